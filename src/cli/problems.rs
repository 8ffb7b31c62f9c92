//! `studentsim problems`: list, show, check, new, import.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};

use super::{Context, LimitArgs, tokio_runtime};
use crate::BadInput;
use crate::grade::{Grader, Label, calibrate};
use crate::jsonl::write_atomically;
use crate::problems::{MANIFEST, Problem, Registry, doctest_file, is_valid_id, ok, refactory};
use crate::text::for_terminal;

#[derive(Debug, Subcommand)]
pub enum ProblemsCommand {
    /// One line per problem: id, number of entry functions, title.
    #[command(
        after_help = "Examples:\n  studentsim problems list\n  studentsim --problems my-course/problems problems list"
    )]
    List,
    /// A problem's statement, code and doctest examples.
    #[command(after_help = "Examples:\n  studentsim problems show count-vowels")]
    Show {
        /// The problem to show.
        id: String,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Grade each reference solution (must be no_error with at least one example) and each bare stub (must
    /// not pass), and time the solution's examples to suggest a per-example limit for the problem:
    /// max(50 ms, 20× its slowest example), never above --example-timeout. All problems unless IDs are given;
    /// exit 1 if any problem fails.
    #[command(
        after_help = "Examples:\n  studentsim problems check\n  studentsim problems check --calibrate count-vowels"
    )]
    Check {
        /// The problems to check [default: every problem of the registry].
        ids: Vec<String>,
        /// Write each suggested limit into the problem's problem.toml (`[limits] example_timeout`).
        #[arg(long)]
        calibrate: bool,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Create `<registry>/ID/problem.toml` from a template.
    #[command(after_help = "Examples:\n  studentsim problems new my-problem")]
    New {
        /// The new problem's id (its folder's name; its entry function is the id as a Python name).
        id: String,
    },
    /// Import problems from a dataset.
    #[command(subcommand)]
    Import(ImportCommand),
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// A homework file with doctests (the CS 61A style): each top-level function or class whose docstrings hold
    /// examples becomes a problem (its definition as `todo`, the rest of the module as `fixed`, its docstring's
    /// prose as the statement, the same name in SOL.py as the solution); then `problems check` runs on them.
    #[command(after_help = "Examples:\n  \
        studentsim problems import doctest-file hw01.py --solution hw01_sol.py --into problems --prefix hw01-")]
    DoctestFile {
        /// The homework file.
        file: PathBuf,
        #[command(flatten)]
        target: ImportTarget,
    },
    /// OK-format test files (okpy, Otter-Grader: `test = {'name', 'points', 'suites': [...]}`) with the homework
    /// file they test: one problem per test file, its visible cases as the stub's examples, its hidden cases as
    /// hidden groups, points as Otter shares them, setup and teardown around every case; locked cases are
    /// refused. Then `problems check` runs on them.
    #[command(after_help = "Examples:\n  \
        studentsim problems import ok hw02/tests --homework hw02/hw02.py --solution hw02_sol.py --into problems")]
    Ok {
        /// A folder of test files (`*.py`; those starting with `__` are skipped), or one test file.
        tests: PathBuf,
        /// The homework file the tests call (its definitions become the stubs; the rest is given code).
        #[arg(long, value_name = "HW.py")]
        homework: PathBuf,
        #[command(flatten)]
        target: ImportTarget,
    },
    /// The Refactory dataset (question_N folders): its I/O pairs become doctests.
    #[command(
        after_help = "Examples:\n  studentsim problems import refactory ../shared/data/refactory --into refactory-problems"
    )]
    Refactory {
        /// The dataset folder, holding question_1 ... question_5.
        dir: PathBuf,
        /// Registry folder to write the problems into.
        #[arg(long, value_name = "DIR")]
        into: PathBuf,
    },
}

/// Where imported problems go and what checks them: what every importer of course material takes.
#[derive(Debug, Args)]
pub struct ImportTarget {
    /// The solutions file: a definition of the same name is each problem's reference solution.
    #[arg(long, value_name = "SOL.py")]
    solution: Option<PathBuf>,
    /// Registry folder to write the problems into (an existing problem of the same id is refused).
    #[arg(long, value_name = "DIR")]
    into: PathBuf,
    /// Put before each problem id (e.g. `hw01-`).
    #[arg(long, default_value = "")]
    prefix: String,
    #[command(flatten)]
    limits: LimitArgs,
}

pub fn run(ctx: &Context, cmd: ProblemsCommand) -> Result<ExitCode> {
    match cmd {
        ProblemsCommand::List => {
            let registry = ctx.registry()?;
            for p in registry.iter() {
                println!("{:<24} {:<28} {}", p.id, p.entry.join(","), p.title);
            }
            Ok(ExitCode::SUCCESS)
        }
        ProblemsCommand::Show { id, limits } => show(ctx, &id, &limits),
        ProblemsCommand::Check { ids, calibrate, limits } => check(ctx, &ids, calibrate, &limits),
        ProblemsCommand::New { id } => {
            if !is_valid_id(&id) {
                return Err(BadInput(format!("problem id `{id}` must be letters, digits, `_` or `-`")).into());
            }
            let path = ctx.problems.join(&id).join(MANIFEST);
            if path.exists() {
                return Err(BadInput(format!("{}: already exists", path.display())).into());
            }
            let text = Problem::scaffold(&id).to_toml();
            write_atomically(&path, |out| Ok(out.write_all(text.as_bytes())?))?;
            println!("created {} (edit it, then run `studentsim problems check {id}`)", path.display());
            Ok(ExitCode::SUCCESS)
        }
        ProblemsCommand::Import(ImportCommand::DoctestFile { file, target }) => {
            import_doctest_file(ctx, &file, &target)
        }
        ProblemsCommand::Import(ImportCommand::Ok { tests, homework, target }) => {
            import_ok(ctx, &tests, &homework, &target)
        }
        ProblemsCommand::Import(ImportCommand::Refactory { dir, into }) => {
            let problems = refactory::import(&dir)?;
            for problem in &problems {
                let path = into.join(&problem.id).join(MANIFEST);
                let text = problem.to_toml();
                write_atomically(&path, |out| Ok(out.write_all(text.as_bytes())?))?;
                println!("{}  {}", problem.id, path.display());
            }
            println!("imported {} problems into {}", problems.len(), into.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn import_doctest_file(ctx: &Context, file: &Path, target: &ImportTarget) -> Result<ExitCode> {
    let homework = read_python(file)?;
    let solution = target.solution.as_deref();
    let solution_text = solution.map(read_python).transpose()?;
    let imported = doctest_file::import(&homework, file, solution_text.as_deref().zip(solution), &target.prefix)?;
    write_imported(ctx, &imported.problems, &imported.unmapped, target)
}

fn import_ok(ctx: &Context, tests: &Path, homework_path: &Path, target: &ImportTarget) -> Result<ExitCode> {
    let (solution, prefix) = (target.solution.as_deref(), target.prefix.as_str());
    let homework = read_python(homework_path)?;
    let solution_text = solution.map(read_python).transpose()?;
    let files = if tests.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(tests)
            .map_err(|e| BadInput(format!("{}: cannot read: {e}", tests.display())))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "py"))
            .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("__")))
            .collect();
        files.sort();
        files
    } else {
        vec![tests.to_path_buf()]
    };
    if files.is_empty() {
        return Err(BadInput(format!("{}: no test files (*.py)", tests.display())).into());
    }
    let homework = ok::Homework::read(&homework, homework_path, solution_text.as_deref().zip(solution))?;
    let (mut problems, mut unmapped) = (Vec::new(), homework.unmapped());
    for file in &files {
        let text = read_python(file)?;
        let (problem, lines) = ok::import_test(&text, file, &homework, prefix)?;
        if problems.iter().any(|p: &Problem| p.id == problem.id) {
            return Err(BadInput(format!("{}: a second test named `{}`", file.display(), problem.title)).into());
        }
        problems.push(problem);
        unmapped.extend(lines);
    }
    if solution.is_none() {
        unmapped.push(format!(
            "{}: no --solution: the problems have no reference solution (`problems check` says so until one is written)",
            tests.display()
        ));
    }
    write_imported(ctx, &problems, &unmapped, target)
}

/// Write imported problems into `target.into` (none unless all can be), print what was not imported, then check
/// them.
fn write_imported(ctx: &Context, problems: &[Problem], unmapped: &[String], target: &ImportTarget) -> Result<ExitCode> {
    let (into, limits) = (target.into.as_path(), &target.limits);
    for problem in problems {
        let path = into.join(&problem.id).join(MANIFEST);
        if path.exists() {
            let why = format!("{}: already exists (remove it or pick another --prefix)", path.display());
            return Err(BadInput(why).into());
        }
    }
    for problem in problems {
        let path = into.join(&problem.id).join(MANIFEST);
        let text = problem.to_toml();
        write_atomically(&path, |out| Ok(out.write_all(text.as_bytes())?))?;
        println!("{}  {}", problem.id, path.display());
    }
    for line in unmapped {
        println!("not imported: {}", for_terminal(line));
    }
    println!("imported {} problems into {}; checking them:", problems.len(), into.display());
    let ids: Vec<String> = problems.iter().map(|p| p.id.clone()).collect();
    check_in(ctx, into, &ids, false, limits)
}

/// A Python file's text, or one line saying why it cannot be read as UTF-8.
fn read_python(path: &Path) -> Result<String, BadInput> {
    let bytes = crate::jsonl::read_bytes(path)?;
    crate::grade::source::decode(&bytes, &path.display().to_string())
        .map_err(|e| BadInput(format!("{}:{}: {}", path.display(), e.line, e.message)))
}

fn show(ctx: &Context, id: &str, limits: &LimitArgs) -> Result<ExitCode> {
    let registry = ctx.registry_naming(&[id])?;
    let problem = registry.get(id)?;
    let grader = ctx.grader(limits, 1)?;
    let tests = tokio_runtime(1)?.block_on(grader.problem_tests(problem))?;
    println!("{} — {}\n\n{}\n", problem.id, problem.title, problem.statement);
    println!("entry: {}", problem.entry.join(", "));
    if let Some(source) = &problem.source {
        println!("source: {source}");
    }
    if !problem.fixed.is_empty() {
        println!("\nfixed code:\n{}", indent(&problem.fixed));
    }
    println!("\ntodo code:\n{}", indent(&problem.todo));
    println!("{} doctest examples:", tests.total() - tests.hidden());
    for (group, source, want) in tests.examples() {
        println!("  [{group}] >>> {}  ->  {}", source.trim_end(), want.trim_end().replace('\n', "\\n"));
    }
    if tests.hidden() > 0 {
        println!("and {} hidden examples (graded, never shown)", tests.hidden());
    }
    if tests.max_score() != tests.total() as f64 {
        println!("points: {} in all", tests.max_score());
    }
    Ok(ExitCode::SUCCESS)
}

fn indent(code: &str) -> String {
    code.lines().map(|l| format!("    {l}\n")).collect()
}

fn check(ctx: &Context, ids: &[String], calibrate: bool, limits: &LimitArgs) -> Result<ExitCode> {
    check_in(ctx, &ctx.problems, ids, calibrate, limits)
}

/// `problems check` on the registry in `dir`.
fn check_in(ctx: &Context, dir: &Path, ids: &[String], calibrate: bool, limits: &LimitArgs) -> Result<ExitCode> {
    // Not ctx.registry(): a broken manifest is a FAIL line here, not a warning.
    let registry = Registry::load(dir)?;
    let broken: Vec<(&str, &str)> =
        registry.broken().filter(|(folder, _)| ids.is_empty() || ids.iter().any(|id| id == folder)).collect();
    let problems: Vec<&Problem> = if ids.is_empty() {
        registry.iter().collect()
    } else {
        ids.iter()
            .filter(|id| !broken.iter().any(|(folder, _)| folder == id))
            .map(|id| registry.get(id))
            .collect::<Result<_, _>>()?
    };
    if problems.is_empty() && broken.is_empty() {
        return Err(BadInput(format!("{}: no problems to check", registry.dir().display())).into());
    }
    for (folder, error) in &broken {
        println!("FAIL  {folder:<24} {}", for_terminal(error));
    }
    let mut failed = broken.len();
    let grader = ctx.grader(limits, 1)?;
    let rt = tokio_runtime(1)?;
    let ceiling = Duration::from_secs_f64(limits.example_timeout);
    for problem in &problems {
        let manifest = std::fs::read_to_string(registry.dir().join(&problem.id).join(MANIFEST)).unwrap_or_default();
        match rt.block_on(check_one(&grader, problem, &manifest, calibrate)) {
            Ok(checked) => {
                let suggested = calibrate::suggested_limit(checked.slowest, ceiling);
                let set = problem
                    .example_timeout()
                    .map_or_else(|| "none".to_owned(), |d| format!("{:.3} s", d.as_secs_f64()));
                println!(
                    "ok    {:<24} {} examples; slowest {:.1} ms; suggested limit {:.3} s (set: {set})",
                    problem.id,
                    checked.examples,
                    checked.slowest.as_secs_f64() * 1000.0,
                    suggested.as_secs_f64()
                );
                if calibrate {
                    let path = registry.dir().join(&problem.id).join(MANIFEST);
                    write_example_timeout(&path, suggested)?;
                    println!(
                        "      wrote [limits] example_timeout = {} to {}",
                        suggested.as_secs_f64(),
                        path.display()
                    );
                }
            }
            Err(why) => {
                failed += 1;
                println!("FAIL  {:<24} {why:#}", problem.id);
            }
        }
    }
    let checked = problems.len() + broken.len();
    println!("{} of {checked} problems pass the check", checked - failed);
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// A sound problem: its example count and its reference solution's slowest example.
struct Checked {
    examples: usize,
    slowest: Duration,
}

/// The problem's example count and slowest example when it is sound, else what is wrong with it. When
/// calibrating, the problem's own limit is lifted: it is about to be measured again.
/// `manifest` is the problem's problem.toml as written, for line numbers that count from its top.
async fn check_one(grader: &Grader, problem: &Problem, manifest: &str, calibrating: bool) -> Result<Checked> {
    anyhow::ensure!(
        !problem.solution.trim().is_empty(),
        "no reference solution: write one into its problem.toml (`solution`), or import with --solution SOL.py"
    );
    for entry in &problem.entry {
        for (field, code) in [("todo", &problem.todo), ("solution", &problem.solution)] {
            anyhow::ensure!(
                defines(code, entry),
                "entry `{entry}` is not defined at the top level of its `{field}` code (a `def`, `class` or assignment)"
            );
        }
    }
    let tests = grader.problem_tests(problem).await.context("its todo code")?;
    let tests = if calibrating { tests.limited(None) } else { tests };
    anyhow::ensure!(tests.total() >= 1, "its todo code has no doctest example");
    let solution = grader.grade(&problem.fixed, &problem.solution, &tests).await;
    if let Some(limit) = problem.limits.example_timeout
        && solution.examples.iter().any(|e| e.outcome == crate::grade::Outcome::Timeout)
    {
        anyhow::bail!(
            "the reference solution runs past the problem's own limit (limits.example_timeout = {limit:.3} s); \
             run `problems check --calibrate {}` to set it again",
            problem.id
        );
    }
    if solution.label == Label::Compile {
        let at = solution.line.and_then(|n| manifest_line(manifest, "solution", n));
        let at = at.map(|line| format!("problem.toml line {line}: ")).unwrap_or_default();
        anyhow::bail!(
            "the reference solution does not compile: {at}{}",
            solution.message.as_deref().unwrap_or_default().trim_end()
        );
    }
    if solution.label != Label::NoError {
        let first_bad = solution.examples.iter().find(|e| e.outcome != crate::grade::Outcome::Pass);
        let detail = match first_bad {
            // the module raised before any example ran: its exception is the whole story
            Some(e) if e.outcome == crate::grade::Outcome::NotRun && solution.message.is_some() => {
                let message = solution.message.as_deref().unwrap_or_default().trim_end();
                let hint = if solution.reason.as_deref() == Some("ModuleNotFoundError") {
                    " (the sandbox has CPython's standard library and no installed packages)"
                } else {
                    ""
                };
                format!("; the module raised {message}{hint}")
            }
            Some(e) if e.hidden => format!("; hidden group `{}`, line {} of its doctest", e.group, e.line),
            Some(e) => {
                let at = manifest_line(manifest, "todo", e.line)
                    .map_or_else(|| format!("todo line {}", e.line), |l| format!("problem.toml line {l}"));
                format!("; {at}: `{}` wanted {:?}, got {:?}", e.source.trim_end(), e.want, e.got)
            }
            None => solution.message.clone().map(|m| format!("; {}", m.trim_end())).unwrap_or_default(),
        };
        anyhow::bail!(
            "the reference solution gets {} ({}/{}){detail}",
            solution.label,
            solution.passed,
            solution.total
        );
    }
    let stub = grader.grade(&problem.fixed, &problem.todo, &tests).await;
    anyhow::ensure!(stub.label != Label::NoError, "the bare stub already passes every example");
    let slowest = calibrate::slowest_example(grader, &problem.fixed, &problem.solution, &tests).await;
    Ok(Checked { examples: tests.total(), slowest })
}

/// Whether `code` defines `name` at its top level: `def name`, `class name` or `name = ...`.
fn defines(code: &str, name: &str) -> bool {
    code.lines().any(|line| {
        let rest = line
            .strip_prefix("def ")
            .or_else(|| line.strip_prefix("async def "))
            .or_else(|| line.strip_prefix("class "));
        match rest {
            Some(rest) => rest.trim_start().strip_prefix(name).is_some_and(|r| r.starts_with(['(', ':', ' '])),
            None => line
                .strip_prefix(name)
                .is_some_and(|r| r.trim_start().starts_with('=') && !r.trim_start().starts_with("==")),
        }
    })
}

/// The problem.toml line of line `n` of a multi-line string field (`todo = '''`): TOML drops the line break
/// right after the opening quotes, so the code starts on the next line when nothing follows them.
fn manifest_line(manifest: &str, field: &str, n: u32) -> Option<usize> {
    let (index, line) = manifest
        .lines()
        .enumerate()
        .find(|(_, l)| l.strip_prefix(field).is_some_and(|rest| rest.trim_start().starts_with('=')))?;
    let value = line.split_once('=')?.1.trim_start();
    let opened_alone =
        ["'''", "\"\"\""].iter().any(|q| value.strip_prefix(q).is_some_and(|rest| rest.trim().is_empty()));
    let first = if opened_alone { index + 2 } else { index + 1 };
    Some(first + n as usize - 1)
}

/// Set `[limits] example_timeout` in a problem.toml, keeping the rest of the file as written (comments,
/// order, string styles); written atomically.
fn write_example_timeout(path: &Path, limit: Duration) -> Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut document: toml_edit::DocumentMut =
        text.parse().map_err(|e| BadInput(format!("{}: {e}", path.display())))?;
    let limits = document
        .entry("limits")
        .or_insert_with(toml_edit::table)
        .as_table_mut()
        .ok_or_else(|| BadInput(format!("{}: `limits` is not a table", path.display())))?;
    limits["example_timeout"] = toml_edit::value(limit.as_secs_f64());
    let updated = document.to_string();
    write_atomically(path, |out| Ok(out.write_all(updated.as_bytes())?))
}
