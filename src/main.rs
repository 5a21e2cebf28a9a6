//! The `ringback` binary: a shim over [`ringback::cli`].
fn main() -> std::process::ExitCode {
    ringback::cli::main()
}
