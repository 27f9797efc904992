//! The `gaussdiv` command-line tool: see `gaussdiv --help` and the README.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

mod cli;

fn main() -> std::process::ExitCode {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // Mesa prints a warning on every Vulkan instance without it; any
        // writable directory will do. Set before any thread exists.
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    cli::main()
}
