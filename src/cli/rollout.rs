//! `studentsim rollout`: simulated attempts, graded in the sandbox, written as trajectory rows.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::builder::TypedValueParser as _;
use clap::{Args, Subcommand, ValueEnum};

use super::output::progress_of_unknown_length;
use super::{Context, LimitArgs, default_jobs, tokio_runtime};
use crate::generate::Generator;
use crate::generate::baseline::{CopyLast, Reference};
use crate::generate::retrieval::Retrieval;
use crate::rollout::output::ResumableOutput;
use crate::rollout::{self, Prepared, Rollout};
use crate::trajectory::Submission;
use crate::{BadInput, jsonl};

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Ground-truth-conditioned next steps (Experiment 2): every real submission that has a predecessor is
    /// generated from its k real predecessors; the output row keeps the real row's student, problem, time and
    /// attempt, so `score` pairs them.
    NextStep(NextStepArgs),
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

#[derive(Debug, Args)]
pub struct NextStepArgs {
    /// The real rows to simulate (native JSONL), e.g. the ns_op part of a split.
    #[arg(long, value_name = "JSONL")]
    input: PathBuf,
    /// Training rows for the retrieval simulator, e.g. the train part of the same split.
    #[arg(long, value_name = "JSONL")]
    train: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = GeneratorName::Retrieval)]
    generator: GeneratorName,
    /// Real predecessors each attempt is conditioned on.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
    k: usize,
    /// Also show the student's submissions on an earlier problem (student context).
    #[arg(long)]
    context: bool,
    /// Nearest training states the retrieval simulator draws from.
    #[arg(long, default_value_t = 5)]
    neighbours: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output rows (JSONL), appended as they finish; a rerun with the same arguments skips finished rows.
    #[arg(long, value_name = "JSONL")]
    out: PathBuf,
    /// Attempts generated and graded at once.
    #[arg(long, default_value_t = default_jobs())]
    jobs: usize,
    #[command(flatten)]
    limits: LimitArgs,
}

pub fn run(ctx: &Context, cmd: RolloutCommand) -> Result<ExitCode> {
    let RolloutCommand::NextStep(args) = cmd;
    let rows = read_rows(&args.input)?;
    let generator: Arc<dyn Generator> = match args.generator {
        GeneratorName::CopyLast => Arc::new(CopyLast),
        GeneratorName::Reference => Arc::new(Reference),
        GeneratorName::Retrieval => {
            let train = args.train.as_deref().ok_or_else(|| BadInput("--generator retrieval needs --train JSONL (the rows it retrieves from)".into()))?;
            let train: Vec<Submission> = read_rows(train)?.into_iter().map(|(_, r)| r).collect();
            let fitted = Retrieval::fit(&train, args.neighbours);
            Arc::new(fitted)
        }
    };
    let registry = ctx.registry()?;
    let mut wanted: Vec<(&str, usize)> = Vec::new();
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
        wanted.push((row.problem.as_str(), *line));
    }
    let grader = ctx.grader(&args.limits, args.jobs)?;
    let rt = tokio_runtime(args.jobs)?;
    let mut problems = HashMap::new();
    for (id, _) in wanted {
        if problems.contains_key(id) {
            continue;
        }
        let problem = Arc::new(registry.get(id)?.clone());
        let tests = rt.block_on(grader.problem_tests(&problem)).with_context(|| format!("reading the tests of {id}"))?;
        problems.insert(id.to_owned(), Prepared { problem, tests: Arc::new(tests) });
    }
    let out = ResumableOutput::open(&args.out)?;
    if out.done() > 0 {
        eprintln!("{}: {} rows already there; continuing", args.out.display(), out.done());
    }
    let rollout = Rollout { grader, generator, problems, seed: args.seed, jobs: args.jobs };
    let rows: Vec<Submission> = rows.into_iter().map(|(_, r)| r).collect();
    let bar = progress_of_unknown_length("next steps");
    let summary = rt.block_on(rollout::next_step(&rollout, &rows, args.k, args.context, &out, &bar))?;
    bar.finish_and_clear();
    eprintln!(
        "{} rows written to {} ({} already there, {} generator failures)",
        summary.written,
        args.out.display(),
        summary.skipped,
        summary.failed
    );
    Ok(ExitCode::SUCCESS)
}

fn read_rows(path: &Path) -> Result<Vec<(usize, Submission)>, BadInput> {
    let rows: Vec<(usize, Submission)> = jsonl::read(path)?;
    if rows.is_empty() {
        return Err(BadInput(format!("{}: no rows", path.display())));
    }
    Ok(rows)
}
