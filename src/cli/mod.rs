//! The `studentsim` command line. Each subcommand lives in its own file; this one parses arguments, builds
//! the shared pieces (registry, grader, tokio runtime) and turns errors into exit codes:
//! 0 success, 1 a failure the command reports (e.g. `problems check` found a broken problem) or an internal
//! error, 2 bad input (one line: what and where).

mod bench;
mod choices;
mod demo;
mod fuzz;
mod generators;
mod grade;
mod gradescope;
mod init;
mod leaderboard;
mod machine;
mod merge;
mod metrics;
mod output;
mod problems;
mod rollout;
mod score;
mod serve;
mod shard;
mod stress;
mod train;
mod trajectories;
mod uptake;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use serde::{Deserialize, Serialize};

use crate::BadInput;
use crate::grade::{GradeLimits, GradeMemo, Grader};
use crate::metrics::style::Pep8Engine;
use crate::problems::Registry;
use crate::sandbox::{Limits, Runtime, RuntimeMissing};
use crate::text::for_terminal;

#[derive(Debug, Parser)]
#[command(
    name = "studentsim",
    version,
    about = "Grade novice Python code in a WebAssembly sandbox and simulate how students struggle",
    long_about = "Grade novice Python code in a WebAssembly sandbox and simulate how students struggle.\n\n\
        Submissions run in CPython 3.14 compiled to WASI, under wasmtime: no files, network, environment or \
        host access, with time, memory and output caps. Each gets a label (no_error, logical, runtime, \
        compile) and a record per doctest example.\n\n\
        Set-up: `runtimes/setup.sh` fetches and builds the interpreter component once (cached)."
)]
pub struct Cli {
    #[command(flatten)]
    globals: Globals,

    #[command(subcommand)]
    command: Command,
}

/// The options every subcommand of both binaries takes.
#[derive(Debug, Args)]
struct Globals {
    /// Problem registry: a folder with one sub-folder (holding `problem.toml`) per problem.
    #[arg(long, global = true, value_name = "DIR", env = "STUDENTSIM_PROBLEMS", default_value = "problems")]
    problems: PathBuf,

    /// Folder of the grader runtime built by `runtimes/setup.sh [--prefix DIR]` [default: the first that holds a
    /// current runtime of $XDG_CACHE_HOME/studentsim (~/.cache/studentsim) and the source tree's runtimes/.cache].
    #[arg(long, global = true, value_name = "DIR", env = "STUDENTSIM_RUNTIME_DIR")]
    runtime: Option<PathBuf>,
}

impl Globals {
    fn context(self) -> Context {
        Context::new(self.problems, self.runtime)
    }
}

/// `studentsim-dev`: what the people who build studentsim run; kept out of the user's binary.
#[derive(Debug, Parser)]
#[command(
    name = "studentsim-dev",
    version,
    about = "studentsim's benchmarks against peer programs, and its fuzzer (for the people who build studentsim)"
)]
pub struct DevCli {
    #[command(flatten)]
    globals: Globals,

    #[command(subcommand)]
    command: DevCommand,
}

#[derive(Debug, Subcommand)]
enum DevCommand {
    /// Benchmarks against a peer measured in the same run (measure; never part of the test suite).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Seeded mutations of valid inputs through every parser of a user's files (rows, problem.toml, ProgSnap2,
    /// GGUF, safetensors, adapter_config.json, config.json, model and tutor replies, Python literals): counts of
    /// panics, hangs and the slowest case.
    Fuzz(fuzz::FuzzArgs),
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole loop on the bundled examples (or --data DIR): split, roll out simulated students, grade every
    /// attempt in the sandbox, score against the held-out students, write the report to ./studentsim-demo/.
    Demo(demo::DemoArgs),
    /// List, show, check, scaffold and import problems.
    #[command(subcommand)]
    Problems(problems::ProblemsCommand),
    /// Grade submissions: files against one problem, or a JSONL batch.
    Grade(grade::GradeArgs),
    /// Import a dataset of real submissions as problems and graded trajectories.
    #[command(subcommand)]
    Import(trajectories::ImportCommand),
    /// Export trajectories to another format.
    #[command(subcommand)]
    Export(trajectories::ExportCommand),
    /// Split trajectories by held-out students and problems into train, ns_op and ns_np.
    Split(trajectories::SplitArgs),
    /// Per-row style features (sizes, AST shape, PEP 8) and edit distance within each stream.
    Metrics(metrics::MetricsArgs),
    /// Join the outputs of `--shard K/N` runs (grade, metrics, rollout, score) into what one unsharded run writes.
    Merge(merge::MergeArgs),
    /// Simulate students: generate attempts, grade them in the sandbox, write trajectory rows.
    #[command(subcommand)]
    Rollout(rollout::RolloutCommand),
    /// Run many simulated students against one tutor bot: latency percentiles, failures, answer leakage.
    StressTutor(stress::StressArgs),
    /// Fine-tune a student model: LoRA on a Qwen2 model from real streams (PEFT in a pinned environment), resumable,
    /// with a training card beside the adapter.
    Train(train::TrainArgs),
    /// Score simulated sets against a real one: the study's tables, metrics.json and SVG plots.
    Score(score::ScoreArgs),
    /// A course folder to start from: a sample problem, three submissions and the commands that grade them.
    Init(init::InitArgs),
    /// Print a shell completion script (e.g. `studentsim completions bash > /etc/bash_completion.d/studentsim`).
    #[command(
        after_help = "Examples:\n  studentsim completions bash > ~/.local/share/bash-completion/completions/studentsim\n  studentsim completions zsh > ~/.zfunc/_studentsim"
    )]
    Completions {
        /// The shell to write the script for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print studentsim's man page (roff; e.g. `studentsim man > studentsim.1 && man ./studentsim.1`).
    #[command(after_help = "Examples:\n  studentsim man > studentsim.1 && man ./studentsim.1")]
    Man,
    /// Gradescope: the autograder zip for a problem (`grade --format gradescope` writes its results.json).
    #[command(subcommand)]
    Gradescope(gradescope::GradescopeCommand),
    /// Serve the grader over HTTP: POST /v1/grade, GET /v1/problems, /healthz, /metrics (see --help).
    Serve(serve::ServeArgs),
    /// Every generator on the held-out students of a dataset (default: the bundled examples), in next-step
    /// (k = 1 and 3, with and without context) and stream modes, on NS_OP and NS_NP: one leaderboard per split
    /// and mode with the real value of each measure, each generator's, and which is closest.
    Leaderboard(leaderboard::LeaderboardArgs),
    /// Whether a generator acts on its feedback: of the transitions whose previous attempt was shown failing
    /// examples, the share of next attempts that pass at least one of them, per simulated set and for the real
    /// students on the same transitions (every attempt graded again in the sandbox).
    FeedbackUptake(uptake::UptakeArgs),
}

/// The PEP 8 engine of the commands that count style problems.
#[derive(Debug, Args)]
struct Pep8EngineArgs {
    /// Which pycodestyle 2.14.0 counts PEP 8 problems: native (the Rust port, about 30× faster, equal to the
    /// reference on every real program and on 100,000 mutated ones) or sandbox (pycodestyle itself in
    /// CPython-on-wasm, the reference).
    #[arg(long, value_enum, value_name = "ENGINE", default_value_t)]
    pep8_engine: Pep8Engine,
}

/// Sandbox limits, shared by every command that grades. The defaults are [`Limits::default`]'s, through
/// [`LimitArgs::default`]; score shards store them in their manifest (serde).
#[derive(Debug, Clone, PartialEq, Args, Serialize, Deserialize)]
pub(crate) struct LimitArgs {
    /// Seconds one doctest example may run.
    #[arg(long, value_name = "SECS", default_value_t = LimitArgs::default().example_timeout)]
    example_timeout: f64,
    /// Seconds one submission may run in all (module load and every example).
    #[arg(long, value_name = "SECS", default_value_t = LimitArgs::default().submission_timeout)]
    submission_timeout: f64,
    /// Memory cap of the interpreter, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = LimitArgs::default().memory_mib)]
    memory_mib: usize,
    /// Bytes a submission may print per example (and, separately, per module load); one more stops the example
    /// with `runtime/output_limit`. Counted by the host, out of the submission's reach.
    #[arg(long, value_name = "BYTES", default_value_t = LimitArgs::default().output_cap)]
    output_cap: usize,
    /// Also meter fuel (wasm instructions) per example; off by default.
    #[arg(long, value_name = "UNITS")]
    fuel: Option<u64>,
}

impl Default for LimitArgs {
    fn default() -> Self {
        let limits = Limits::default();
        Self {
            example_timeout: limits.per_call.as_secs_f64(),
            submission_timeout: limits.per_session.as_secs_f64(),
            memory_mib: limits.memory_bytes >> 20,
            output_cap: limits.output_bytes,
            fuel: limits.fuel,
        }
    }
}

impl LimitArgs {
    /// The limits for a command that grades up to `parallel` submissions at once.
    fn to_limits(&self, parallel: usize) -> Result<GradeLimits> {
        Ok(GradeLimits {
            sandbox: Limits {
                per_call: positive_secs("example-timeout", self.example_timeout)?,
                per_session: positive_secs("submission-timeout", self.submission_timeout)?,
                memory_bytes: self.memory_mib << 20,
                fuel: self.fuel,
                output_bytes: self.output_cap,
                // one slot per parallel submission, plus one for parsing a problem's doctests
                max_sessions: u32::try_from(parallel).unwrap_or(u32::MAX).saturating_add(1),
            },
            reveal_hidden: false,
        })
    }
}

/// The value of a `--FLAG SECS` option as a duration, or why it is not one.
pub(crate) fn positive_secs(flag: &str, secs: f64) -> Result<Duration, BadInput> {
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| BadInput(format!("--{flag}: {secs} is not a positive number of seconds")))
}

/// Run the command line; the binary's whole `main`.
pub fn main() -> ExitCode {
    keep_freed_memory();
    exit_code(run(Cli::parse()))
}

/// `studentsim-dev`'s whole `main`.
pub fn dev_main() -> ExitCode {
    keep_freed_memory();
    let cli = DevCli::parse();
    let ctx = cli.globals.context();
    exit_code(match cli.command {
        DevCommand::Bench(cmd) => bench::run(&ctx, cmd),
        DevCommand::Fuzz(args) => fuzz::run(args),
    })
}

/// The model's forward pass allocates and frees tensors of megabytes per layer. glibc returns such memory to
/// the kernel (large blocks are mapped one by one, and the heap top is trimmed), so each pass faults every page
/// in again and the kernel zeroes it: ~15% of prefill time. Keep freed memory for reuse instead; the most
/// the process keeps is its peak, which the model sets anyway.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it runs before any thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// `bytes` to standard output; a reader that stops early (`| head`) is not an error.
fn print_all(bytes: &[u8]) -> Result<ExitCode> {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// The exit code of a command's result, with its error as one line on stderr.
fn exit_code(result: Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(error) => {
            // One line whatever the error quotes (a file's text, a model's reply, a server's answer).
            let line = |message: String| eprintln!("error: {}", for_terminal(&message));
            if let Some(bad) = error.chain().find_map(|e| e.downcast_ref::<BadInput>()) {
                line(bad.to_string());
                ExitCode::from(2)
            } else if let Some(missing) = error.chain().find_map(|e| e.downcast_ref::<RuntimeMissing>()) {
                line(missing.to_string());
                ExitCode::from(2)
            } else {
                line(format!("{error:#}"));
                ExitCode::FAILURE
            }
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let ctx = cli.globals.context();
    match cli.command {
        Command::Demo(args) => demo::run(&ctx, args),
        Command::Problems(cmd) => problems::run(&ctx, cmd),
        Command::Grade(args) => grade::run(&ctx, args),
        Command::Import(cmd) => trajectories::import(&ctx, cmd),
        Command::Export(cmd) => trajectories::export(&ctx, cmd),
        Command::Split(args) => trajectories::split(args),
        Command::Metrics(args) => metrics::run(&ctx, args),
        Command::Merge(args) => merge::run(args),
        Command::Rollout(cmd) => rollout::run(&ctx, cmd),
        Command::Score(args) => score::run(&ctx, args),
        Command::Train(args) => train::run(&ctx, args),
        Command::StressTutor(args) => stress::run(&ctx, args),
        Command::Serve(args) => serve::run(&ctx, args),
        Command::Gradescope(cmd) => gradescope::run(&ctx, cmd),
        Command::Init(args) => init::run(&args),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "studentsim", &mut script);
            print_all(&script)
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut page)?;
            print_all(&page)
        }
        Command::Leaderboard(args) => leaderboard::run(&ctx, args),
        Command::FeedbackUptake(args) => uptake::run(&ctx, &args),
    }
}

/// What every subcommand may need, built lazily so `--help` and `problems list` never touch the runtime.
struct Context {
    problems: PathBuf,
    runtime: Option<PathBuf>,
    /// The records of this run's rollouts, shared by the graders [`Context::remembering_grader`] makes.
    grades: Arc<GradeMemo>,
}

impl Context {
    fn new(problems: PathBuf, runtime: Option<PathBuf>) -> Self {
        Self { problems, runtime, grades: Arc::default() }
    }

    /// The same run on the problems of `problems` (the records of its rollouts still shared).
    fn with_problems(&self, problems: PathBuf) -> Self {
        Self { problems, runtime: self.runtime.clone(), grades: Arc::clone(&self.grades) }
    }

    /// The runtime folder: --runtime (or $STUDENTSIM_RUNTIME_DIR), else the default search.
    fn runtime_dir(&self) -> PathBuf {
        self.runtime.clone().unwrap_or_else(Runtime::default_dir)
    }

    /// The registry, with a warning on standard error for each problem whose manifest is broken: that problem is
    /// unavailable, the others work.
    fn registry(&self) -> Result<Registry> {
        self.registry_naming(&[])
    }

    /// [`Context::registry`] for a command that names `named` itself: a broken one among them is its error line
    /// when asked for, so it gets no warning first.
    fn registry_naming(&self, named: &[&str]) -> Result<Registry> {
        let registry = Registry::load(&self.problems)?;
        for (folder, error) in registry.broken().filter(|(folder, _)| !named.contains(folder)) {
            eprintln!("warning: {} (problem `{folder}` skipped)", for_terminal(error));
        }
        Ok(registry)
    }

    fn grader(&self, limits: &LimitArgs, parallel: usize) -> Result<Arc<Grader>> {
        self.grader_with(limits.to_limits(parallel)?)
    }

    /// [`Context::grader`] for rollouts, which grade the same code many times: its grades are remembered for the
    /// rest of the run, in every grader this makes ([`Grader::remembering`]).
    fn remembering_grader(&self, limits: &LimitArgs, parallel: usize) -> Result<Arc<Grader>> {
        let grader = self.new_grader(limits.to_limits(parallel)?)?;
        Ok(Arc::new(grader.remembering(Arc::clone(&self.grades))))
    }

    fn grader_with(&self, limits: GradeLimits) -> Result<Arc<Grader>> {
        Ok(Arc::new(self.new_grader(limits)?))
    }

    /// A grader on this run's runtime folder.
    fn new_grader(&self, limits: GradeLimits) -> Result<Grader> {
        let runtime = Runtime::locate(self.runtime.as_deref())?;
        Grader::new(&runtime, limits)
    }
}

/// The rows of a JSONL file, which must have some.
fn read_rows(path: &Path) -> Result<Vec<(usize, crate::trajectory::Submission)>, BadInput> {
    let rows = crate::trajectory::read_numbered(path)?;
    if rows.is_empty() {
        return Err(BadInput(format!("{}: no rows", path.display())));
    }
    Ok(rows)
}

/// The registry's problem for each distinct problem of `rows` ((line, problem id) of `file`); the first row
/// naming a problem the registry lacks is bad input at its line. `why` says what the problems are needed for.
fn registry_problems<'r, 'a>(
    ctx: &Context,
    registry: &'r Registry,
    file: &Path,
    rows: impl IntoIterator<Item = (usize, &'a str)>,
    why: &str,
) -> Result<std::collections::HashMap<String, &'r crate::problems::Problem>, BadInput> {
    let mut found = std::collections::HashMap::new();
    for (line, id) in rows {
        if !found.contains_key(id) {
            let problem = registry.get(id).map_err(|_| {
                BadInput(format!(
                    "{}:{line}: problem {id:?} is not in the registry {} ({why}pass --problems)",
                    file.display(),
                    ctx.problems.display()
                ))
            })?;
            found.insert(id.to_owned(), problem);
        }
    }
    Ok(found)
}

/// The problems folder and trajectory file of `--data DIR` (as `import` writes them), or the bundled ones.
pub(crate) fn dataset(data: Option<&Path>) -> Result<(PathBuf, PathBuf), BadInput> {
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (problems, rows) = match data {
        Some(dir) => (dir.join("problems"), dir.join("trajectories.jsonl")),
        None => (bundled.join("problems"), bundled.join("examples/trajectories.jsonl")),
    };
    for needed in [&problems, &rows] {
        if !needed.exists() {
            return Err(BadInput(format!(
                "{}: not found (--data needs problems/ and trajectories.jsonl)",
                needed.display()
            )));
        }
    }
    Ok((problems, rows))
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn tokio_runtime(workers: usize) -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(workers.max(1)).enable_all().build()?)
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    /// Every `Examples:` line of every subcommand's help parses (up to a comment or a shell operator such as `>`,
    /// `&&`, `|`), so no example names an option that is not there.
    #[test]
    fn every_example_in_the_help_parses() {
        fn examples(cmd: &clap::Command, found: &mut Vec<String>) {
            if let Some(text) = cmd.get_after_help().map(|t| t.to_string()) {
                let after = text.split_once("Examples:").map_or("", |(_, rest)| rest);
                found.extend(after.lines().map(str::trim).filter(|l| l.starts_with("studentsim ")).map(str::to_owned));
            }
            cmd.get_subcommands().for_each(|sub| examples(sub, found));
        }
        let mut found = Vec::new();
        examples(&super::Cli::command(), &mut found);
        assert!(found.len() >= 30, "examples on (nearly) every command: {found:?}");
        for line in found {
            // a shell variable stands for a shard number (`--shard $K/3`); a comment or an operator ends the command
            let command = line.replace("$K", "1");
            let words: Vec<&str> =
                command.split_whitespace().take_while(|w| !matches!(*w, ">" | "&&" | "|" | "<" | "#")).collect();
            let words: Vec<&str> = words.into_iter().map(|w| w.trim_start_matches("~/")).collect();
            if let Err(e) = super::Cli::try_parse_from(&words) {
                panic!("`{line}` does not parse: {e}");
            }
        }
    }

    /// clap's own checks over every subcommand of both binaries: no two options share a name or a short flag, every
    /// `requires` and `conflicts_with` names an option that exists.
    #[test]
    fn both_command_lines_are_well_formed() {
        super::Cli::command().debug_assert();
        super::DevCli::command().debug_assert();
    }

    /// Every option of every command says what it does, and names its default once: in its text or clap's
    /// `[default: ...]`, never both.
    #[test]
    fn every_option_is_described_with_its_default_once() {
        fn walk(command: &clap::Command, path: &str, problems: &mut Vec<String>) {
            for arg in command.get_arguments().filter(|a| !a.is_hide_set()) {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                if help.trim().is_empty() {
                    problems.push(format!("{path} --{id}: no description"));
                }
                let clap_shows_default = !arg.get_default_values().is_empty() && !arg.is_hide_default_value_set();
                if clap_shows_default && help.contains("[default:") {
                    problems.push(format!("{path} --{id}: its default twice"));
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), problems);
            }
        }
        let mut problems = vec![];
        walk(&super::Cli::command(), "studentsim", &mut problems);
        walk(&super::DevCli::command(), "studentsim-dev", &mut problems);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
