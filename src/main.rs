fn main() -> std::process::ExitCode {
    studentsim::cli::main()
}
