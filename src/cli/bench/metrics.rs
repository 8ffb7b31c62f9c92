//! `studentsim-dev bench metrics`: the per-row metrics against a Python pipeline doing the same work.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use clap::builder::TypedValueParser as _;
use serde::Deserialize;

use super::super::output::progress;
use super::super::{Context, LimitArgs, tokio_runtime};
use crate::BadInput;
use crate::metrics::style::{Pep8Engine, ast_shapes, in_parallel, styles_parallel};
use crate::metrics::{chars, edit_distance, lines};
use crate::trajectory;

#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Trajectory rows (native JSONL), e.g. the output of `studentsim import newcaledonia`.
    #[arg(long, value_name = "JSONL")]
    input: PathBuf,
    /// Threads on our side and processes on the Python side.
    #[arg(long, short, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
    jobs: usize,
    /// The Python with pycodestyle 2.14.0 and rapidfuzz (installed by runtimes/setup.sh).
    #[arg(long, value_name = "PATH")]
    python: Option<PathBuf>,
    /// Print one JSON object (figures and `ratios`) instead of the table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    limits: LimitArgs,
}

/// The Python pipeline: reads {codes, pairs, jobs} on stdin, writes its results and the compute time of each
/// part (sizes + AST, PEP 8 plain + wrapped, edit distances), each part a `Pool.map` over `jobs` processes.
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

def sizes_and_shape(code):
    s = code.strip()
    return [s.count("\n") + 1, len(s), *shape(code)]

def pep8_both(code):
    return [pep8(code, False), pep8(code, True)]

def edit(pair):
    return Levenshtein.distance(pair[0], pair[1])

job = json.load(sys.stdin)
codes = job["codes"]
seconds = []
with Pool(job["jobs"]) as pool:
    for work, items, chunk in [
        (sizes_and_shape, codes, 64),
        (pep8_both, codes, 64),
        (edit, [(codes[i], codes[j]) for i, j in job["pairs"]], 256),
    ]:
        start = time.perf_counter()
        results = pool.map(work, items, chunksize=chunk)
        seconds.append(time.perf_counter() - start)
        if work is sizes_and_shape: shapes = results
        elif work is pep8_both: counts = results
        else: edits = results
json.dump({"seconds": seconds, "rows": [a + b for a, b in zip(shapes, counts)], "edits": edits}, sys.stdout)
"#;

#[derive(Deserialize)]
struct PythonResult {
    /// Sizes + AST, PEP 8, edit distances.
    seconds: [f64; 3],
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
    eprintln!("metrics of {n} rows ({} edit-distance pairs), {} threads / processes per side", pairs.len(), args.jobs);

    let grader = ctx.grader(&args.limits, args.jobs)?;
    let rt = tokio_runtime(args.jobs)?;
    let (handle, jobs) = (rt.handle(), args.jobs);
    // Warm the pool and the compiled component so neither side pays start-up costs in its figure.
    styles_parallel(handle, &grader, &codes[..1], Pep8Engine::Sandbox, 1, &crate::records::NoProgress)?;

    let bar = progress(5 * n, "studentsim");
    let timed = |work: &mut dyn FnMut() -> Result<()>| -> Result<f64> {
        let start = Instant::now();
        work()?;
        Ok(start.elapsed().as_secs_f64())
    };
    // An engine's plain and wrapped counts of every program.
    let both_counts = |engine: Pep8Engine| -> Result<(Vec<u32>, Vec<u32>)> {
        let plain = in_parallel(handle, &codes, jobs, &bar, async |chunk| engine.counts(&grader, chunk, false).await)?;
        Ok((plain, in_parallel(handle, &codes, jobs, &bar, async |chunk| engine.counts(&grader, chunk, true).await)?))
    };
    let mut shapes = Vec::new();
    let mut counts = (Vec::new(), Vec::new());
    let mut our_edits = Vec::new();
    let ours = [
        timed(&mut || {
            shapes = in_parallel(handle, &codes, jobs, &bar, async |chunk| ast_shapes(&grader, chunk).await)?;
            Ok(())
        })?,
        timed(&mut || {
            counts = both_counts(Pep8Engine::Native)?;
            Ok(())
        })?,
        timed(&mut || {
            our_edits = pairs.iter().map(|&(i, j)| edit_distance(codes[i], codes[j])).collect();
            Ok(())
        })?,
    ];
    // The reference engine, pycodestyle itself in the sandbox, timed and compared with the port in the same run.
    let mut sandboxed = (Vec::new(), Vec::new());
    let sandbox_seconds = timed(&mut || {
        sandboxed = both_counts(Pep8Engine::Sandbox)?;
        Ok(())
    })?;
    bar.finish_and_clear();
    let same_engines = (0..n).filter(|&i| (counts.0[i], counts.1[i]) == (sandboxed.0[i], sandboxed.1[i])).count();

    let python = args.python.clone().unwrap_or_else(|| crate::sandbox::Runtime::default_dir().join("venv/bin/python"));
    eprintln!("running the Python pipeline ({})", python.display());
    let theirs = run_python(&python, &codes, &pairs, jobs)?;

    let row = |i: usize| {
        [
            lines(codes[i]) as i64,
            chars(codes[i]) as i64,
            shapes[i].depth.into(),
            shapes[i].width.into(),
            shapes[i].nodes.into(),
            counts.0[i].into(),
        ]
    };
    let same_plain = (0..n).filter(|&i| row(i)[..] == theirs.rows[i][..6]).count();
    let same_wrapped = (0..n).filter(|&i| i64::from(counts.1[i]) == theirs.rows[i][6]).count();
    let same_edits = our_edits.iter().zip(&theirs.edits).filter(|(a, b)| a == b).count();
    let parts = ["sizes + AST shape", "PEP 8 (plain + wrapped)", "edit distance"];
    let pep8_python = theirs.seconds[1];
    let (o, t) = (ours.iter().sum::<f64>(), theirs.seconds.iter().sum::<f64>());
    if args.json {
        let keys = ["sizes_ast", "pep8", "edit_distance"];
        let mut ratios: serde_json::Map<String, serde_json::Value> = keys
            .iter()
            .zip(ours.iter().zip(&theirs.seconds))
            .map(|(k, (o, t))| (format!("{k}_vs_python"), (t / o).into()))
            .collect();
        ratios.insert("all_metrics_vs_python".into(), (t / o).into());
        ratios.insert("pep8_sandbox_vs_python".into(), (pep8_python / sandbox_seconds).into());
        let figures = serde_json::json!({
            "rows": n,
            "pairs": pairs.len(),
            "jobs": jobs,
            "studentsim_seconds": keys.iter().zip(&ours).map(|(k, s)| (k.to_string(), *s)).chain([("pep8_sandbox".to_string(), sandbox_seconds)]).collect::<std::collections::BTreeMap<_, _>>(),
            "python_seconds": keys.iter().zip(&theirs.seconds).map(|(k, s)| (k.to_string(), *s)).collect::<std::collections::BTreeMap<_, _>>(),
            "agreement": {"plain": same_plain, "wrapped": same_wrapped, "edit_distance": same_edits, "native_vs_sandbox": same_engines},
            "ratios": ratios,
        });
        println!("{figures}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<28} {:>12} {:>12} {:>8}", "part", "studentsim", "python", "ratio");
    for (part, (o, t)) in parts.iter().zip(ours.iter().zip(&theirs.seconds)) {
        println!("{part:<28} {o:>10.3} s {t:>10.3} s {:>7.2}x", t / o);
    }
    println!("{:<28} {o:>10.3} s {t:>10.3} s {:>7.2}x", "all metrics", t / o);
    println!(
        "{:<28} {sandbox_seconds:>10.3} s {pep8_python:>10.3} s {:>7.2}x",
        "PEP 8 in the sandbox",
        pep8_python / sandbox_seconds
    );
    println!(
        "agreement: sizes, AST and plain PEP 8 equal on {same_plain}/{n} rows; wrapped PEP 8 on {same_wrapped}/{n} \
         (it depends on the tokenizer of Python >= 3.12, which the sandbox has; pass --python for such a peer); \
         edit distances {same_edits}/{}; the native and the sandboxed pycodestyle give the same plain and wrapped \
         counts on {same_engines}/{n} rows",
        pairs.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn run_python(python: &Path, codes: &[&str], pairs: &[(usize, usize)], jobs: usize) -> Result<PythonResult> {
    let job = serde_json::json!({ "codes": codes, "pairs": pairs, "jobs": jobs });
    super::python_json(python, PYTHON_PIPELINE, &job, "the Python pipeline (run runtimes/setup.sh, or pass --python)")
}
