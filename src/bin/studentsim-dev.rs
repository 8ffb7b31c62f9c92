//! `studentsim-dev`: the benchmarks against peer programs and the fuzzer, for the people who build studentsim;
//! the user's `studentsim` binary leaves them out.

fn main() -> std::process::ExitCode {
    studentsim::cli::dev_main()
}
