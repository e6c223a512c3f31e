//! The `tally` command. All the work is in the library's `cli` module; this
//! file only turns its outcome into an exit code.

fn main() -> std::process::ExitCode {
    tally::cli::main()
}
