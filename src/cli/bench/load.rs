//! `studentsim-dev bench load`: many submissions (real programs mixed with a hostile corpus) graded in one process,
//! one thousand at a time, with the throughput and the host's memory after each thousand.
//!
//! Every chunk has the same make-up (the same share of hostile programs, drawn in the same proportions), so the
//! curve compares like with like. Each real program is graded several times, at different places in the run:
//! every copy must get the same record, which is how state leaking from one submission into a later one would
//! show. A leak probe makes that direct: it fails when it sees what an earlier copy of itself left behind.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, Result, ensure};
use clap::Args;
use clap::builder::TypedValueParser as _;
use rand::seq::SliceRandom as _;
use rand::{RngExt as _, SeedableRng as _};

use super::super::output::progress;
use super::super::{Context, LimitArgs, tokio_runtime};
use super::grade::{calibrate_all, problem_of};
use crate::BadInput;
use crate::grade::batch::grade_many;
use crate::grade::{GradeRecord, Label};
use crate::problems::refactory::{self, Verdict};

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The Refactory dataset folder (its correct and wrong programs are the real part of the load).
    #[arg(long, value_name = "DIR", default_value = "../shared/data/refactory")]
    refactory: std::path::PathBuf,
    /// Submissions to grade in all.
    #[arg(long, value_name = "N", default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    submissions: usize,
    /// Submissions per measured chunk (one line of the curve).
    #[arg(long, value_name = "N", default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    chunk: usize,
    /// Hostile submissions per thousand.
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u16).range(0..=1000).map(usize::from))]
    hostile_per_mille: usize,
    /// Parallel submissions.
    #[arg(long, short, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
    jobs: usize,
    /// Seed of the order of the load.
    #[arg(long, value_name = "N", default_value_t = 20)]
    seed: u64,
    /// Print one JSON object (the curve, the peak and `ratios`) instead of the table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    limits: LimitArgs,
}

/// A hostile submission for a problem whose function is `{f}`: each tries to exhaust, escape or outlast the
/// sandbox. `{f}` is replaced by the problem's first entry function and `{deep}` by more open brackets than
/// CPython's parser allows. The expected label is checked per copy.
pub(super) const HOSTILE: &[(&str, &str, Label)] = &[
    ("hang in the function", "def {f}(*args):\n    while True:\n        pass\n", Label::Runtime),
    ("sleep in the function", "import time\ndef {f}(*args):\n    time.sleep(3600)\n", Label::Runtime),
    ("memory bomb", "hoard = []\nwhile True:\n    hoard.append(bytearray(1 << 20))\n", Label::Runtime),
    ("one huge allocation", "block = bytearray(1 << 40)\n", Label::Runtime),
    ("output flood at load", "while True:\n    print('x' * 10000)\n", Label::Runtime),
    ("output flood in the function", "def {f}(*args):\n    while True:\n        print('spam', args)\n", Label::Runtime),
    ("recursion bomb", "def {f}(*args):\n    return {f}(*args) + 1\n", Label::Runtime),
    (
        "recursion past the C stack",
        "import sys\nsys.setrecursionlimit(10**7)\ndef {f}(*args):\n    return {f}(*args) + 1\n",
        Label::Runtime,
    ),
    ("reads the host's files", "secret = open('/etc/passwd').read()\n", Label::Runtime),
    ("lists the host's root", "import os\nfiles = os.listdir('/')\n", Label::Runtime),
    ("opens a socket", "import socket\nsocket.create_connection(('127.0.0.1', 22))\n", Label::Runtime),
    ("runs a shell", "import os\nos.system('id')\ndef {f}(*args):\n    return os.popen('id').read()\n", Label::Runtime),
    ("exits", "import os\nos._exit(3)\n", Label::Runtime),
    (
        "compile bomb",
        "x = {deep}1
",
        Label::Compile,
    ),
];

/// A correct submission that fails (by raising at load) when an earlier submission's state is still there:
/// a builtin, an environment variable, a module attribute or a file it left.
pub(super) const LEAK_PROBE: &str = "\
import builtins, os, sys
if hasattr(builtins, 'LEAKED') or os.environ.get('LEAKED') or hasattr(sys, 'LEAKED') or os.path.exists('leaked'):
    raise RuntimeError('state from an earlier submission')
builtins.LEAKED = os.environ['LEAKED'] = sys.LEAKED = '1'
try:
    open('leaked', 'w').write('1')
except OSError:
    pass
";

/// What one submission of the load is.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    Real(usize),
    Hostile(usize),
    LeakProbe,
}

/// One measured chunk of the curve.
#[derive(Debug, serde::Serialize)]
struct Chunk {
    first: usize,
    last: usize,
    seconds: f64,
    per_second: f64,
    rss_mib: f64,
}

pub fn run(ctx: &Context, args: LoadArgs) -> Result<ExitCode> {
    let LoadArgs { refactory: dir, submissions, chunk, hostile_per_mille, jobs, seed, json, limits } = args;
    let mut problems = refactory::import(&dir)?;
    let programs = refactory::programs(&dir, &[Verdict::Correct, Verdict::Wrong])?;
    if programs.is_empty() {
        return Err(BadInput(format!("{}: no programs to grade", dir.display())).into());
    }
    let grader = ctx.grader(&limits, jobs)?;
    let rt = tokio_runtime(jobs)?;
    calibrate_all(&rt, &grader, &mut problems, &limits)?;

    let kinds = plan(submissions, chunk, hostile_per_mille, programs.len(), seed);
    let mut real_items = Vec::with_capacity(programs.len());
    for program in &programs {
        let code =
            std::fs::read_to_string(&program.path).with_context(|| format!("reading {}", program.path.display()))?;
        real_items.push((problem_of(&problems, &program.problem_id), code));
    }
    // Hostile programs and the leak probe go to the problems in turn.
    let mut turn = 0;
    let mut jobs_of = Vec::with_capacity(kinds.len());
    for kind in &kinds {
        turn += 1;
        let problem = &problems[turn % problems.len()];
        jobs_of.push(match *kind {
            Kind::Real(i) => real_items[i].clone(),
            Kind::Hostile(h) => {
                (problem, HOSTILE[h].1.replace("{f}", &problem.entry[0]).replace("{deep}", &"(".repeat(300)))
            }
            Kind::LeakProbe => (problem, format!("{LEAK_PROBE}\n{}", problem.solution)),
        });
    }
    eprintln!(
        "grading {} submissions ({} real programs, {hostile_per_mille}‰ hostile of {} kinds, leak probes), {jobs} at a time",
        kinds.len(),
        programs.len(),
        HOSTILE.len()
    );

    let bar = progress(kinds.len(), "load");
    // Records are checked as each chunk ends and then dropped (only each real program's first is kept), so
    // the RSS curve shows the grader's own memory, not a growing list of results.
    let mut findings = Findings::default();
    let mut curve = Vec::new();
    let started = Instant::now();
    for (index, jobs_in_chunk) in jobs_of.chunks(chunk).enumerate() {
        let chunk_started = Instant::now();
        let graded = rt.block_on(grade_many(&grader, jobs_in_chunk.to_vec(), jobs, &bar))?;
        let seconds = chunk_started.elapsed().as_secs_f64();
        let first = index * chunk;
        for (offset, graded) in graded.into_iter().enumerate() {
            findings.observe(first + offset, kinds[first + offset], graded.record);
        }
        curve.push(Chunk {
            first: first + 1,
            last: first + jobs_in_chunk.len(),
            seconds,
            per_second: jobs_in_chunk.len() as f64 / seconds,
            rss_mib: memory("VmRSS")?,
        });
    }
    let wall = started.elapsed();
    bar.finish_and_clear();
    let peak_mib = memory("VmHWM")?;

    let flat = curve.last().map_or(1.0, |c| c.per_second) / curve[0].per_second;
    if json {
        let figures = serde_json::json!({
            "submissions": kinds.len(), "seconds": wall.as_secs_f64(), "per_second": kinds.len() as f64 / wall.as_secs_f64(),
            "peak_rss_mib": peak_mib, "curve": curve, "findings": findings,
            "ratios": {"last_chunk_vs_first": flat},
        });
        println!("{figures}");
    } else {
        println!("{:>13}  {:>8}  {:>9}  {:>8}", "submissions", "seconds", "graded/s", "RSS MiB");
        for c in &curve {
            println!("{:>6}-{:<6}  {:>8.1}  {:>9.1}  {:>8.1}", c.first, c.last, c.seconds, c.per_second, c.rss_mib);
        }
        println!(
            "{} submissions in {:.1} s ({:.1}/s); peak RSS {peak_mib:.1} MiB; last chunk / first chunk throughput {flat:.2}",
            kinds.len(),
            wall.as_secs_f64(),
            kinds.len() as f64 / wall.as_secs_f64()
        );
        println!(
            "checked: {} later copies of {} real programs against their first copy, {} hostile programs against their expected label, {} leak probes; {} graded differently or wrongly",
            findings.real_copies_checked,
            findings.distinct_real_programs,
            findings.hostile_graded,
            findings.leak_probes,
            findings.problems
        );
        for line in &findings.lines {
            println!("{line}");
        }
    }
    ensure!(findings.problems == 0, "{} submissions were graded inconsistently (listed above)", findings.problems);
    Ok(ExitCode::SUCCESS)
}

/// The order of the load: each chunk holds its share of hostile programs (the kinds in turn) and one leak probe,
/// the rest real programs taken in a shuffled cycle, all shuffled within the chunk.
pub(super) fn plan(submissions: usize, chunk: usize, hostile_per_mille: usize, reals: usize, seed: u64) -> Vec<Kind> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut cycle: Vec<usize> = (0..reals).collect();
    cycle.shuffle(&mut rng);
    let (mut next_real, mut next_hostile) = (0, rng.random_range(0..HOSTILE.len()));
    let mut kinds = Vec::with_capacity(submissions);
    while kinds.len() < submissions {
        let size = chunk.min(submissions - kinds.len());
        let hostile = (size * hostile_per_mille).div_ceil(1000).min(size);
        let mut part: Vec<Kind> = Vec::with_capacity(size);
        if size > hostile {
            part.push(Kind::LeakProbe);
        }
        for _ in 0..hostile {
            part.push(Kind::Hostile(next_hostile % HOSTILE.len()));
            next_hostile += 1;
        }
        while part.len() < size {
            part.push(Kind::Real(cycle[next_real % reals]));
            next_real += 1;
        }
        part.shuffle(&mut rng);
        kinds.extend(part);
    }
    kinds
}

/// What the run found: any copy of a program graded differently from its first copy, a hostile program not
/// given its expected label, a leak probe that saw an earlier submission's state.
#[derive(Debug, Default, serde::Serialize)]
struct Findings {
    distinct_real_programs: usize,
    real_copies_checked: usize,
    hostile_graded: usize,
    leak_probes: usize,
    problems: usize,
    /// The first few problems, one line each.
    lines: Vec<String>,
    /// Each real program's first record, which its later copies must equal.
    #[serde(skip)]
    first_records: HashMap<usize, GradeRecord>,
}

impl Findings {
    /// Check submission `position` (0-based) of kind `kind`.
    fn observe(&mut self, position: usize, kind: Kind, record: GradeRecord) {
        let problem = match kind {
            Kind::Real(i) => match self.first_records.get(&i) {
                None => {
                    self.first_records.insert(i, record);
                    self.distinct_real_programs += 1;
                    None
                }
                Some(first) => {
                    self.real_copies_checked += 1;
                    (*first != record).then(|| {
                        format!("real program {i} graded {:?}, its first copy {:?}", record.label, first.label)
                    })
                }
            },
            Kind::Hostile(h) => {
                self.hostile_graded += 1;
                let (name, _, label) = HOSTILE[h];
                (record.label != label).then(|| {
                    format!(
                        "hostile program {name:?} graded {:?} ({:?}), expected {label:?}",
                        record.label, record.reason
                    )
                })
            }
            Kind::LeakProbe => {
                self.leak_probes += 1;
                (record.label != Label::NoError)
                    .then(|| format!("the leak probe graded {:?}: {:?}", record.label, record.message))
            }
        };
        if let Some(line) = problem {
            self.problems += 1;
            if self.lines.len() < 20 {
                self.lines.push(format!("submission {}: {line}", position + 1));
            }
        }
    }
}

/// A memory figure of this process from `/proc/self/status`, in MiB (`VmRSS` now, `VmHWM` the peak).
pub(super) fn memory(field: &str) -> Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status (Linux only)")?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/self/status"))?;
    Ok(kib / 1024.0)
}
