//! `funcscope`: the harness CLI as a standalone binary (the same commands as `cargo xtask`).

#![forbid(unsafe_code)]

fn main() {
    std::process::exit(funcscope_harness::cli::main());
}
