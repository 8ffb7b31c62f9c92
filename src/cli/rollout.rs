//! `studentsim rollout`: simulated attempts, graded in the sandbox, written as trajectory rows.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::builder::TypedValueParser as _;
use jiff::SignedDuration;
use clap::{Args, Subcommand, ValueEnum};

use super::output::progress_of_unknown_length;
use super::{Context, LimitArgs, default_jobs, tokio_runtime};
use crate::generate::Generator;
use crate::generate::baseline::{CopyLast, Reference};
use crate::generate::retrieval::Retrieval;
use crate::rollout::output::ResumableOutput;
use crate::rollout::{self, Prepared, Rollout, StreamOptions};
use crate::trajectory::Submission;
use crate::{BadInput, jsonl};

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Ground-truth-conditioned next steps (Experiment 2): every real submission that has a predecessor is
    /// generated from its k real predecessors; the output row keeps the real row's student, problem, time and
    /// attempt, so `score` pairs them.
    NextStep(NextStepArgs),
    /// The first, middle and last submission of each real stream (Experiment 1), each from the problem alone
    /// (and the student context with --context).
    Stages(StagesArgs),
    /// Autoregressive streams: for each real (student, problem) stream, start from nothing and generate attempt
    /// after attempt; each is graded in the sandbox and its label and failing examples go into the next request,
    /// until it passes, the generator submits (<SUBMIT>), or --max-attempts.
    Stream(StreamArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GeneratorName {
    /// Real successors of the nearest real states from other students (needs --train).
    Retrieval,
    /// Repeats the previous attempt.
    CopyLast,
    /// Always the problem's reference solution.
    Reference,
}

/// What every rollout mode takes.
#[derive(Debug, Args)]
struct CommonArgs {
    /// The real rows to simulate (native JSONL), e.g. the ns_op part of a split.
    #[arg(long, value_name = "JSONL")]
    input: PathBuf,
    /// Training rows for the retrieval simulator, e.g. the train part of the same split.
    #[arg(long, value_name = "JSONL")]
    train: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = GeneratorName::Retrieval)]
    generator: GeneratorName,
    /// Nearest training states the retrieval simulator draws from.
    #[arg(long, default_value_t = 5)]
    neighbours: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output rows (JSONL), appended as they finish; a rerun with the same arguments skips finished rows.
    #[arg(long, value_name = "JSONL")]
    out: PathBuf,
    /// Attempts (next steps) or streams worked on at once.
    #[arg(long, default_value_t = default_jobs())]
    jobs: usize,
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(Debug, Args)]
pub struct NextStepArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Real predecessors each attempt is conditioned on.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
    k: usize,
    /// Also show the student's submissions on an earlier problem (student context).
    #[arg(long)]
    context: bool,
}

#[derive(Debug, Args)]
pub struct StagesArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Also show the student's submission on an earlier problem at the same stage (student context).
    #[arg(long)]
    context: bool,
}

#[derive(Debug, Args)]
pub struct StreamArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Attempts after which a stream stops even without success.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    max_attempts: u32,
    /// Simulated seconds between two attempts (the first takes the real stream's start time).
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    interval: u32,
}

pub fn run(ctx: &Context, cmd: RolloutCommand) -> Result<ExitCode> {
    let args = match &cmd {
        RolloutCommand::NextStep(a) => &a.common,
        RolloutCommand::Stages(a) => &a.common,
        RolloutCommand::Stream(a) => &a.common,
    };
    let (rollout, rows, rt) = prepare(ctx, args)?;
    let out = Arc::new(ResumableOutput::open(&args.out)?);
    if out.done() > 0 {
        eprintln!("{}: {} rows already there; continuing", args.out.display(), out.done());
    }
    let summary = match &cmd {
        RolloutCommand::NextStep(a) => {
            let bar = progress_of_unknown_length("next steps");
            let summary = rt.block_on(rollout::next_step(&rollout, &rows, a.k, a.context, &out, &bar))?;
            bar.finish_and_clear();
            summary
        }
        RolloutCommand::Stages(a) => {
            let bar = progress_of_unknown_length("stages");
            let summary = rt.block_on(rollout::stages(&rollout, &rows, a.context, &out, &bar))?;
            bar.finish_and_clear();
            summary
        }
        RolloutCommand::Stream(a) => {
            let options = StreamOptions { max_attempts: a.max_attempts, interval: SignedDuration::from_secs(a.interval.into()) };
            let bar = progress_of_unknown_length("streams");
            let summary = rt.block_on(rollout::streams(&rollout, &rows, options, &out, &bar))?;
            bar.finish_and_clear();
            summary
        }
    };
    eprintln!(
        "{} rows written to {} ({} already there, {} generator failures)",
        summary.written,
        args.out.display(),
        summary.skipped,
        summary.failed
    );
    Ok(ExitCode::SUCCESS)
}

/// Read and check the inputs, build the generator, parse each problem's tests once.
fn prepare(ctx: &Context, args: &CommonArgs) -> Result<(Rollout, Vec<Submission>, tokio::runtime::Runtime)> {
    let rows = read_rows(&args.input)?;
    let generator: Arc<dyn Generator> = match args.generator {
        GeneratorName::CopyLast => Arc::new(CopyLast),
        GeneratorName::Reference => Arc::new(Reference),
        GeneratorName::Retrieval => {
            let train = args.train.as_deref().ok_or_else(|| BadInput("--generator retrieval needs --train JSONL (the rows it retrieves from)".into()))?;
            let train: Vec<Submission> = read_rows(train)?.into_iter().map(|(_, r)| r).collect();
            Arc::new(Retrieval::fit(&train, args.neighbours))
        }
    };
    let registry = ctx.registry()?;
    for (line, row) in &rows {
        if registry.get(&row.problem).is_err() {
            return Err(BadInput(format!(
                "{}:{line}: problem {:?} is not in the registry {} (pass --problems)",
                args.input.display(),
                row.problem,
                ctx.problems.display()
            ))
            .into());
        }
    }
    let grader = ctx.grader(&args.limits, args.jobs)?;
    let rt = tokio_runtime(args.jobs)?;
    let mut problems = HashMap::new();
    for (_, row) in &rows {
        if problems.contains_key(&row.problem) {
            continue;
        }
        let problem = Arc::new(registry.get(&row.problem)?.clone());
        let tests = rt.block_on(grader.problem_tests(&problem)).with_context(|| format!("reading the tests of {}", row.problem))?;
        problems.insert(row.problem.clone(), Prepared { problem, tests: Arc::new(tests) });
    }
    let rollout = Rollout { grader, generator, problems, seed: args.seed, jobs: args.jobs };
    Ok((rollout, rows.into_iter().map(|(_, r)| r).collect(), rt))
}

fn read_rows(path: &Path) -> Result<Vec<(usize, Submission)>, BadInput> {
    let rows: Vec<(usize, Submission)> = jsonl::read(path)?;
    if rows.is_empty() {
        return Err(BadInput(format!("{}: no rows", path.display())));
    }
    Ok(rows)
}
