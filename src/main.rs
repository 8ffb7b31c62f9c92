//! `studentsim`: the command line (`studentsim::cli`).

fn main() -> std::process::ExitCode {
    studentsim::cli::main()
}
