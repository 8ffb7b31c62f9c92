//! `studentsim-dev bench grade`: the sandboxed grader against native doctest in subprocesses.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::Args;
use clap::builder::TypedValueParser as _;

use super::super::output::progress;
use super::super::{Context, LimitArgs, tokio_runtime};
use crate::BadInput;
use crate::grade::batch::grade_many;
use crate::grade::{Grader, Outcome, Tests, calibrate};
use crate::problems::Problem;
use crate::problems::refactory::{self, Verdict};

#[derive(Debug, Args)]
pub struct GradeArgs {
    /// The Refactory dataset folder.
    #[arg(long, value_name = "DIR", default_value = "../shared/data/refactory")]
    refactory: PathBuf,
    /// Parallel submissions, for both sides.
    #[arg(long, short, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
    jobs: usize,
    /// Grade only the first N programs.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// The native interpreter to compare with (resolved once to its `sys.executable`, so a launcher is not timed).
    #[arg(long, value_name = "PATH", default_value = "python3")]
    python: String,
    /// Print one JSON object (figures and `ratios`) instead of the lines.
    #[arg(long)]
    json: bool,
    /// Keep the global per-example limit for every problem instead of calibrating one per problem from its
    /// reference solution (as `problems check --calibrate` does); both sides get the same limits either way.
    #[arg(long)]
    no_calibrate: bool,
    #[command(flatten)]
    limits: LimitArgs,
}

/// The native peer: one fresh interpreter per submission, reading {fixed, code, tests, load_limit,
/// example_limit} on stdin and printing the number of examples that passed. Examples of the doctest text share
/// globals, as in the sandbox; the module load and each example get the sandbox's limits (an interval timer),
/// and a timeout ends the grade, as it does in the sandbox.
const NATIVE_RUNNER: &str = r#"
import doctest, json, os, signal, sys
job = json.load(sys.stdin)
sys.stdout = open(os.devnull, "w")  # student prints must not fill the result pipe
class Hang(KeyboardInterrupt):  # doctest re-raises KeyboardInterrupt; it catches everything else
    pass
def alarm(*_):
    raise Hang()
signal.signal(signal.SIGALRM, alarm)
def limited(seconds, run):
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return run()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
globs = {"__name__": "submission"}
try:
    limited(job["load_limit"], lambda: exec(compile(job["fixed"] + "\n" + job["code"], "<submission>", "exec"), globs))
except BaseException:
    sys.__stdout__.write("0\n")
    sys.exit(0)
test = doctest.DocTestParser().get_doctest(job["tests"], globs, "tests", "<tests>", 0)
passed = 0
for example in test.examples:
    runner = doctest.DocTestRunner(verbose=False)
    single = doctest.DocTest([example], globs, "tests", "<tests>", 0, None)
    try:
        limited(job["example_limit"], lambda: runner.run(single, out=lambda s: None, clear_globs=False))
    except Hang:
        break
    passed += runner.tries - runner.failures
sys.__stdout__.write(f"{passed}\n")
"#;

pub fn run(ctx: &Context, args: GradeArgs) -> Result<ExitCode> {
    let GradeArgs { refactory: dir, jobs, limit, python, json, no_calibrate, limits } = args;
    let mut problems = refactory::import(&dir)?;
    let mut programs = refactory::programs(&dir, &[Verdict::Correct, Verdict::Wrong])?;
    if let Some(n) = limit {
        programs.truncate(n);
    }
    if programs.is_empty() {
        return Err(BadInput(format!("{}: no programs to grade", dir.display())).into());
    }
    let grader = ctx.grader(&limits, jobs)?;
    let rt = tokio_runtime(jobs)?;
    let ceiling = Duration::from_secs_f64(limits.example_timeout);
    if !no_calibrate {
        calibrate_all(&rt, &grader, &mut problems, &limits)?;
    }
    let mut sandbox_items = Vec::with_capacity(programs.len());
    let mut native_jobs = Vec::with_capacity(programs.len());
    for program in &programs {
        let code =
            std::fs::read_to_string(&program.path).with_context(|| format!("reading {}", program.path.display()))?;
        let problem = problem_of(&problems, &program.problem_id);
        let tests = rt.block_on(grader.tests_for(problem))?;
        let example_limit = problem.example_timeout().unwrap_or(ceiling).min(ceiling);
        native_jobs.push(
            serde_json::json!({
                "fixed": problem.fixed, "code": code, "tests": doctest_text(&tests),
                "load_limit": limits.example_timeout, "example_limit": example_limit.as_secs_f64(),
            })
            .to_string(),
        );
        sandbox_items.push((problem, code));
    }
    let n = programs.len();
    eprintln!("grading {n} Refactory programs (correct + wrong), {jobs} at a time");

    let bar = progress(n, "sandbox");
    let start = Instant::now();
    let sandbox = rt.block_on(grade_many(&grader, sandbox_items, jobs, &bar))?;
    let sandbox_wall = start.elapsed();
    bar.finish_and_clear();

    let bar = progress(n, "native ");
    let start = Instant::now();
    let native = run_native(&interpreter(&python)?, &native_jobs, jobs, &bar)?;
    let native_wall = start.elapsed();
    bar.finish_and_clear();

    let rate = |count: usize, t: Duration| count as f64 / t.as_secs_f64();
    // Programs that hang cost each side its time limit; without them the ratio is that of the machinery.
    let finished: Vec<usize> = (0..n)
        .filter(|&i| !native[i].timed_out && sandbox[i].record.examples.iter().all(|e| e.outcome != Outcome::Timeout))
        .collect();
    let busy = |times: &mut dyn Iterator<Item = Duration>| times.sum::<Duration>() / jobs as u32;
    let sandbox_busy = busy(&mut finished.iter().map(|&i| sandbox[i].elapsed));
    let native_busy = busy(&mut finished.iter().map(|&i| native[i].elapsed));
    let agree = sandbox.iter().zip(&native).filter(|(s, n)| !n.timed_out && s.record.passed == n.passed).count();
    let (all_ratio, finished_ratio) = (
        native_wall.as_secs_f64() / sandbox_wall.as_secs_f64(),
        native_busy.as_secs_f64() / sandbox_busy.as_secs_f64(),
    );
    if json {
        let figures = serde_json::json!({
            "programs": n,
            "sandbox": {"seconds": sandbox_wall.as_secs_f64(), "programs_per_s": rate(n, sandbox_wall),
                        "finished_programs_per_s": rate(finished.len(), sandbox_busy)},
            "native": {"seconds": native_wall.as_secs_f64(), "programs_per_s": rate(n, native_wall),
                       "finished_programs_per_s": rate(finished.len(), native_busy)},
            "finished": finished.len(),
            "same_passed_count": agree,
            "ratios": {"sandbox_vs_native": all_ratio, "sandbox_vs_native_within_limits": finished_ratio},
        });
        println!("{figures}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "all {n} programs: sandbox {:.1}/s ({:.1} s), native {:.1}/s ({:.1} s), ratio {all_ratio:.1}x",
        rate(n, sandbox_wall),
        sandbox_wall.as_secs_f64(),
        rate(n, native_wall),
        native_wall.as_secs_f64(),
    );
    println!(
        "{} programs within the time limits (per-program time / {jobs} jobs): sandbox {:.1}/s, native {:.1}/s, ratio {finished_ratio:.1}x",
        finished.len(),
        rate(finished.len(), sandbox_busy),
        rate(finished.len(), native_busy),
    );
    println!(
        "same passed-example count on {agree} of {n} programs (native compares printed output, so programs that print differ)"
    );
    Ok(ExitCode::SUCCESS)
}

/// Give each problem the per-example limit `problems check --calibrate` would write (from its reference
/// solution's slowest example, capped at the global limit), printing each.
pub(super) fn calibrate_all(
    rt: &tokio::runtime::Runtime,
    grader: &Grader,
    problems: &mut [Problem],
    limits: &LimitArgs,
) -> Result<()> {
    let ceiling = Duration::from_secs_f64(limits.example_timeout);
    for problem in problems {
        let tests = rt.block_on(grader.problem_tests(problem))?;
        let slowest = rt.block_on(calibrate::slowest_example(grader, &problem.fixed, &problem.solution, &tests));
        let limit = calibrate::suggested_limit(slowest, ceiling);
        eprintln!(
            "{}: slowest reference example {:.1} ms, limit {:.3} s",
            problem.id,
            slowest.as_secs_f64() * 1000.0,
            limit.as_secs_f64()
        );
        problem.limits.example_timeout = Some(limit.as_secs_f64());
    }
    Ok(())
}

/// The problem `id` of `problems`, which the Refactory importer made from the same folder as the programs.
pub(super) fn problem_of<'p>(problems: &'p [Problem], id: &str) -> &'p Problem {
    problems.iter().find(|p| p.id == id).expect("programs come from these problems")
}

/// The examples as one doctest text (`>>>`/`...` lines and expected output), for the native runner.
fn doctest_text(tests: &Tests) -> String {
    let mut text = String::new();
    for (_, source, want) in tests.examples() {
        for (i, line) in source.trim_end_matches('\n').lines().enumerate() {
            text.push_str(if i == 0 { ">>> " } else { "... " });
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(want);
        text.push('\n');
    }
    text
}

/// What the native peer found for one program.
#[derive(Debug, Default, Clone)]
struct NativeRun {
    passed: usize,
    timed_out: bool,
    elapsed: Duration,
}

/// The interpreter `python` names, as a path: a launcher such as pyenv's shim (a shell script, about 75 ms per
/// start here) would otherwise be timed with every submission the peer grades.
fn interpreter(python: &str) -> Result<String> {
    let out = Command::new(python)
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .with_context(|| format!("starting {python}"))?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || path.is_empty() {
        return Err(BadInput(format!("--python {python}: does not report its sys.executable")).into());
    }
    Ok(path)
}

/// One native run per job, `parallel` interpreters at a time; each is killed after `NATIVE_TIMEOUT`.
fn run_native(python: &str, jobs: &[String], parallel: usize, bar: &indicatif::ProgressBar) -> Result<Vec<NativeRun>> {
    let next = AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<NativeRun>> = jobs.iter().map(|_| Default::default()).collect();
    std::thread::scope(|scope| -> Result<()> {
        let workers: Vec<_> = (0..parallel.max(1))
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(job) = jobs.get(i) else { return Ok(()) };
                        *results[i].lock().unwrap() = native_one(python, job)?;
                        bar.inc(1);
                    }
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().expect("a native worker panicked"))
    })?;
    Ok(results.into_iter().map(|m| m.into_inner().unwrap()).collect())
}

/// The native peer's limit per submission: the sandbox's default per-submission limit.
const NATIVE_TIMEOUT: Duration = Duration::from_secs(10);

fn native_one(python: &str, job: &str) -> Result<NativeRun> {
    let start = Instant::now();
    let mut child = Command::new(python)
        .args(["-c", NATIVE_RUNNER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {python}"))?;
    child.stdin.take().expect("piped").write_all(job.as_bytes())?;
    while child.try_wait()?.is_none() {
        if start.elapsed() > NATIVE_TIMEOUT {
            child.kill()?;
            child.wait()?;
            return Ok(NativeRun { passed: 0, timed_out: true, elapsed: start.elapsed() });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("piped"), &mut out)?;
    let passed = out.split_whitespace().next().and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok(NativeRun { passed, timed_out: false, elapsed: start.elapsed() })
}
