//! `studentsim bench metrics`: the per-row metrics against a Python pipeline doing the same work.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context as _, Result};
use clap::Args;
use clap::builder::TypedValueParser as _;
use serde::Deserialize;

use super::super::output::progress;
use super::super::{Context, LimitArgs, tokio_runtime};
use crate::metrics::edit_distance;
use crate::metrics::style::{Style, styles_parallel};
use crate::trajectory;
use crate::BadInput;

#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Trajectory rows (native JSONL), e.g. the output of `studentsim import newcaledonia`.
    #[arg(long, value_name = "JSONL")]
    input: PathBuf,
    /// Threads on our side and processes on the Python side.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
    jobs: usize,
    /// The Python with pycodestyle 2.14.0 and rapidfuzz (installed by runtimes/setup.sh).
    #[arg(long, value_name = "PATH")]
    python: Option<PathBuf>,
    #[command(flatten)]
    limits: LimitArgs,
}

/// The Python pipeline: reads {codes, pairs, jobs} on stdin, writes {seconds, rows, edits} (compute time only).
const PYTHON_PIPELINE: &str = r#"
import ast, io, json, sys, time
from multiprocessing import Pool
import pycodestyle
from rapidfuzz.distance import Levenshtein

style = pycodestyle.StyleGuide(quiet=True)

class CountingReport(pycodestyle.BaseReport):
    def init_file(self, *args, **kwargs):
        self.saw_w292 = False
        return super().init_file(*args, **kwargs)
    def error(self, line_number, offset, text, check):
        code = super().error(line_number, offset, text, check)
        if code == "W292":
            self.saw_w292 = True
        return code

def pep8(code, wrapped):
    report = CountingReport(style.options)
    if wrapped:
        lines = ["def _tmp_func():"] + ["    " + l.rstrip() for l in code.strip().split("\n")]
    else:
        lines = io.StringIO(code, newline=None).readlines()
    count = pycodestyle.Checker(lines=lines, options=style.options, report=report).check_all()
    return count - 1 if wrapped and report.saw_w292 else count

def shape(code):
    try:
        tree = ast.parse(code.strip())
    except BaseException:
        return [-1, -1, -1]
    per_depth, stack = {}, [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        per_depth[depth] = per_depth.get(depth, 0) + 1
        stack.extend((c, depth + 1) for c in ast.iter_child_nodes(node))
    return [max(per_depth), max(per_depth.values()), sum(per_depth.values())]

def features(code):
    s = code.strip()
    return [s.count("\n") + 1, len(s), *shape(code), pep8(code, False), pep8(code, True)]

def edit(pair):
    return Levenshtein.distance(pair[0], pair[1])

job = json.load(sys.stdin)
codes = job["codes"]
start = time.perf_counter()
with Pool(job["jobs"]) as pool:
    rows = pool.map(features, codes, chunksize=64)
    edits = pool.map(edit, [(codes[i], codes[j]) for i, j in job["pairs"]], chunksize=256)
seconds = time.perf_counter() - start
json.dump({"seconds": seconds, "rows": rows, "edits": edits}, sys.stdout)
"#;

#[derive(Deserialize)]
struct PythonResult {
    seconds: f64,
    rows: Vec<[i64; 7]>,
    edits: Vec<usize>,
}

pub fn run(ctx: &Context, args: MetricsArgs) -> Result<ExitCode> {
    let rows = trajectory::read(&args.input)?;
    if rows.is_empty() {
        return Err(BadInput(format!("{}: no rows", args.input.display())).into());
    }
    let codes: Vec<&str> = rows.iter().map(|r| r.code.as_str()).collect();
    let pairs: Vec<(usize, usize)> =
        trajectory::streams(&rows).values().flat_map(|s| s.windows(2).map(|w| (w[0], w[1]))).collect();
    let n = rows.len();
    println!("metrics of {n} rows ({} edit-distance pairs), {} threads / processes per side", pairs.len(), args.jobs);

    let grader = ctx.grader(&args.limits, args.jobs)?;
    let rt = tokio_runtime(args.jobs)?;
    // Warm the pool and the compiled component so neither side pays start-up costs in its figure.
    styles_parallel(rt.handle(), &grader, &codes[..1], 1, &indicatif::ProgressBar::hidden())?;

    let bar = progress(n, "studentsim");
    let start = Instant::now();
    let ours = styles_parallel(rt.handle(), &grader, &codes, args.jobs, &bar)?;
    let our_edits: Vec<usize> = pairs.iter().map(|&(i, j)| edit_distance(codes[i], codes[j])).collect();
    let our_seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();

    let python = args.python.clone().unwrap_or_else(|| crate::sandbox::Runtime::default_dir().join("venv/bin/python"));
    eprintln!("running the Python pipeline ({})", python.display());
    let theirs = run_python(&python, &codes, &pairs, args.jobs)?;

    let as_row = |s: &Style| {
        [s.lines as i64, s.chars as i64, s.ast_depth.into(), s.ast_width.into(), s.ast_nodes.into(), s.pep8.into(), s.pep8_wrapped.into()]
    };
    let same_rows = ours.iter().zip(&theirs.rows).filter(|(o, t)| as_row(o) == **t).count();
    let same_edits = our_edits.iter().zip(&theirs.edits).filter(|(a, b)| a == b).count();
    println!("studentsim: {our_seconds:.2} s ({:.0} rows/s)", n as f64 / our_seconds);
    println!("python:     {:.2} s ({:.0} rows/s)", theirs.seconds, n as f64 / theirs.seconds);
    println!("ratio:      {:.2}x", theirs.seconds / our_seconds);
    println!("agreement:  {same_rows}/{n} rows with all 7 features equal, {same_edits}/{} edit distances equal", pairs.len());
    Ok(ExitCode::SUCCESS)
}

fn run_python(python: &PathBuf, codes: &[&str], pairs: &[(usize, usize)], jobs: usize) -> Result<PythonResult> {
    let mut child = Command::new(python)
        .args(["-c", PYTHON_PIPELINE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {} (run runtimes/setup.sh, or pass --python)", python.display()))?;
    let job = serde_json::json!({ "codes": codes, "pairs": pairs, "jobs": jobs });
    child.stdin.take().expect("piped").write_all(job.to_string().as_bytes())?;
    let out = child.wait_with_output()?;
    anyhow::ensure!(out.status.success(), "the Python pipeline failed ({})", out.status);
    Ok(serde_json::from_slice(&out.stdout).context("reading the Python pipeline's result")?)
}
