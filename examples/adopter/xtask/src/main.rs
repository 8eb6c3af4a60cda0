//! `cargo xtask regress|baseline|compare|run|history ...`: funcscope's commands, configured by
//! this workspace's `funcscope.toml`.

fn main() {
    std::process::exit(funcscope_harness::cli::main());
}
