//! `studentsim-dev bench edits`: how fast the edit model writes next steps when the grading of its candidates is
//! left out (issue 11 asks for at least 200 per second on two cores), against `retrieval`, which grades nothing,
//! on the same requests in the same run.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;

use super::super::output::progress;
use super::super::{Context, LimitArgs, tokio_runtime};
use crate::BadInput;
use crate::generate::edits::EditModel;
use crate::generate::retrieval::Retrieval;
use crate::generate::{Generator, Request};
use crate::problems::{Problem, Registry};
use crate::rollout::next_step_request;
use crate::trajectory::split::{Part, Split, SplitSpec};
use crate::trajectory::{self, Submission, views};

/// The rate issue 11 asks of the edit model, grading excluded.
const TARGET_PER_S: f64 = 200.0;

#[derive(Debug, Args)]
#[command(after_help = "The requests are the NS_OP next steps of a split (held-out students on kept problems, 20% \
    of each held out), from the k real attempts before each target; the edit model and retrieval are fitted on the \
    train part. The edit model grades its candidates in the sandbox (the outcome it draws decides which it keeps); \
    that time is measured call by call and left out of its rate, and printed. One request at a time on one thread, \
    so the rate on two cores is at least this one.")]
pub struct EditsArgs {
    /// A folder with problems/ and trajectories.jsonl, as `import` writes it [default: the bundled problems and
    /// examples].
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Seed of the split (NewCaledonia in docs/results.md: 1).
    #[arg(long, default_value_t = 0)]
    split_seed: u64,
    /// Real attempts before each target the generators see.
    #[arg(long, default_value_t = 3)]
    k: usize,
    /// Nearest training states each generator draws from.
    #[arg(long, default_value_t = 5)]
    neighbours: usize,
    /// Seed of the requests.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object (figures and `ratios`) instead of the table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    limits: LimitArgs,
}

/// One generator's run over every request.
struct Timed {
    seconds: f64,
    /// Part of `seconds` spent grading.
    grading: f64,
}

impl Timed {
    fn per_second(&self, n: usize) -> f64 {
        n as f64 / (self.seconds - self.grading).max(f64::MIN_POSITIVE)
    }
}

pub fn run(ctx: &Context, args: EditsArgs) -> Result<ExitCode> {
    let (problems, rows_file) = crate::cli::dataset(args.data.as_deref())?;
    let registry = Registry::load(&problems)?;
    let rows = trajectory::read(&rows_file)?;
    let spec = SplitSpec { seed: args.split_seed, ..SplitSpec::default() };
    let split = Split::new(&rows, &spec)?;
    let part = |p: Part| -> Vec<Submission> { rows.iter().filter(|r| split.part(r) == p).cloned().collect() };
    let (train, ns_op) = (part(Part::Train), part(Part::NsOp));
    let requests = requests(&registry, &ns_op, args.k, args.seed)?;
    if requests.is_empty() {
        return Err(BadInput(format!(
            "{}: the NS_OP part of split {} has no next-step target",
            rows_file.display(),
            args.split_seed
        ))
        .into());
    }
    let n = requests.len();

    let started = Instant::now();
    let edits = EditModel::fit(&train, args.neighbours).judged_by(ctx.grader(&args.limits, 1)?);
    let retrieval = Retrieval::fit(&train, args.neighbours);
    let fit = started.elapsed().as_secs_f64();
    let rt = tokio_runtime(1)?;
    let time = |generator: &dyn Generator, grading: &dyn Fn() -> Duration| -> Result<Timed> {
        let bar = progress(n, generator.name());
        let (start, graded) = (Instant::now(), grading());
        for request in &requests {
            rt.block_on(generator.generate(request))?;
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(Timed { seconds: start.elapsed().as_secs_f64(), grading: (grading() - graded).as_secs_f64() })
    };
    let ours = time(&edits, &|| edits.grading_time())?;
    let peer = time(&retrieval, &|| Duration::ZERO)?;
    let (rate, peer_rate) = (ours.per_second(n), peer.per_second(n));

    if args.json {
        let figures = serde_json::json!({
            "next_steps": n,
            "train_rows": train.len(),
            "fit_seconds": fit,
            "edits": {"seconds": ours.seconds, "grading_seconds": ours.grading, "next_steps_per_s_excluding_grading": rate},
            "retrieval": {"seconds": peer.seconds, "next_steps_per_s": peer_rate},
            "ratios": {"edits_vs_retrieval": rate / peer_rate, "edits_vs_target_200_per_s": rate / TARGET_PER_S},
        });
        println!("{figures}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{n} NS_OP next steps (k = {}), fitted on {} training rows in {fit:.2} s; one thread",
        args.k,
        train.len()
    );
    println!("{:<11} {:>10} {:>15} {:>14}", "generator", "seconds", "of it grading", "next steps/s");
    println!("{:<11} {:>8.2} s {:>13.2} s {:>14.1}  (grading left out)", "edits", ours.seconds, ours.grading, rate);
    println!("{:<11} {:>8.2} s {:>13.2} s {:>14.1}", "retrieval", peer.seconds, 0.0, peer_rate);
    println!(
        "ratio: edits / retrieval {:.2}x; edits / the {TARGET_PER_S} per s target {:.2}x",
        rate / peer_rate,
        rate / TARGET_PER_S
    );
    Ok(ExitCode::SUCCESS)
}

/// The next-step requests for the targets of `rows`, without the student context (neither generator reads it).
fn requests(registry: &Registry, rows: &[Submission], k: usize, seed: u64) -> Result<Vec<Request>, BadInput> {
    let mut problems: HashMap<&str, Arc<Problem>> = HashMap::new();
    let mut requests = Vec::new();
    for item in views::next_steps(rows, k) {
        let id = rows[item.target].problem.as_str();
        let problem = match problems.entry(id) {
            Entry::Occupied(known) => Arc::clone(known.get()),
            Entry::Vacant(new) => Arc::clone(new.insert(Arc::new(registry.get(id)?.clone()))),
        };
        requests.push(next_step_request(rows, &item, problem, false, None, seed));
    }
    Ok(requests)
}
