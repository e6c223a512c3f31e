//! The command-line program: flags, subcommands, the REPL.

/// Runs the command line and returns the process exit code.
pub fn main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
