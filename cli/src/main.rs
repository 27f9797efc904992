//! The `gaussdiv` command-line tool: see `gaussdiv --help` and the README.

fn main() -> std::process::ExitCode {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // Mesa prints a warning on every Vulkan instance without it; any
        // writable directory will do. Set before any thread exists.
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    gaussdiv_cli::main()
}
