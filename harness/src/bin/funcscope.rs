//! `funcscope`: the harness CLI as a standalone binary (the same commands as `cargo xtask`).

fn main() {
    std::process::exit(funcscope_harness::cli::main());
}
