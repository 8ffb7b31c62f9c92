//! Rollouts: generators write attempts, the sandbox grades each one, and the rows go out as trajectories.
//!
//! Modes so far:
//! - **next step** (Experiment 2, ground-truth-conditioned): each real submission that has a predecessor is
//!   generated from its `k` real predecessors (and, optionally, the student-context segment); the row keeps the
//!   target's student, problem, time and attempt, so `score` pairs it with the real one.
//!
//! Output rows are appended and flushed one at a time ([`output::ResumableOutput`]); a rerun skips finished rows.

pub mod output;

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Result;
use indicatif::ProgressBar;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::generate::{Attempt, ContextProblem, Generator, Request, Target};
use crate::grade::{Grader, Tests};
use crate::problems::Problem;
use crate::trajectory::views::{NextStepItem, next_steps};
use crate::trajectory::{Provenance, Submission};
use output::{ResumableOutput, key};

/// A problem with its parsed tests, ready to grade attempts against.
pub struct Prepared {
    pub problem: Arc<Problem>,
    pub tests: Arc<Tests>,
}

/// What every rollout needs.
pub struct Rollout {
    pub grader: Arc<Grader>,
    pub generator: Arc<dyn Generator>,
    pub problems: HashMap<String, Prepared>,
    pub seed: u64,
    /// Attempts generated and graded at once.
    pub jobs: usize,
}

/// What a rollout did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub written: usize,
    /// Rows already in the output from an earlier run.
    pub skipped: usize,
    /// Rows whose generator failed (written with the error and empty code).
    pub failed: usize,
}

/// Ground-truth-conditioned next steps for every real row of `rows` that has a predecessor, from up to `k` real
/// predecessors, with the student-context segment when `with_context`.
pub async fn next_step(
    rollout: &Rollout,
    rows: &[Submission],
    k: usize,
    with_context: bool,
    out: &ResumableOutput,
    progress: &ProgressBar,
) -> Result<Summary> {
    let items: Vec<NextStepItem> = next_steps(rows, k);
    progress.set_length(items.len() as u64);
    let mut summary = Summary::default();
    let permits = Arc::new(Semaphore::new(rollout.jobs.max(1)));
    let mut tasks = JoinSet::new();
    for item in items {
        let target = &rows[item.target];
        if out.is_done(&key(target)) {
            summary.skipped += 1;
            progress.inc(1);
            continue;
        }
        let prepared = &rollout.problems[&target.problem];
        let context = match (with_context, item.context.first()) {
            (true, Some(&first)) => vec![ContextProblem {
                problem: rows[first].problem.clone(),
                codes: item.context.iter().map(|&i| rows[i].code.clone()).collect(),
            }],
            _ => Vec::new(),
        };
        let request = Request {
            problem: prepared.problem.clone(),
            student: target.student.clone(),
            history: item.priors.iter().map(|&i| Attempt { code: rows[i].code.clone(), feedback: None }).collect(),
            context,
            target: Target::Next,
            seed: rollout.seed,
        };
        let template = target.clone();
        let (generator, grader, tests) = (rollout.generator.clone(), rollout.grader.clone(), prepared.tests.clone());
        let permit = permits.clone().acquire_owned().await.expect("the semaphore is never closed");
        let seed = rollout.seed;
        tasks.spawn(async move {
            let row = attempt_row(&*generator, &grader, &tests, &request, template, seed).await;
            drop(permit);
            row
        });
        while let Some(done) = tasks.try_join_next() {
            record(done, out, &mut summary, progress)?;
        }
    }
    while let Some(done) = tasks.join_next().await {
        record(done, out, &mut summary, progress)?;
    }
    Ok(summary)
}

fn record(
    done: Result<Submission, tokio::task::JoinError>,
    out: &ResumableOutput,
    summary: &mut Summary,
    progress: &ProgressBar,
) -> Result<()> {
    let row = done.expect("a rollout task panicked");
    if row.generated.as_ref().is_some_and(|g| g.error.is_some()) {
        summary.failed += 1;
    }
    out.append(&row)?;
    summary.written += 1;
    progress.inc(1);
    Ok(())
}

/// Generate one attempt for `request`, grade it, and make its output row from `template` (the real row it
/// stands for: student, problem, time, attempt).
async fn attempt_row(
    generator: &dyn Generator,
    grader: &Grader,
    tests: &Tests,
    request: &Request,
    template: Submission,
    seed: u64,
) -> Submission {
    let (generation, error) = match generator.generate(request).await {
        Ok(g) => (Some(g), None),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    let code = generation.as_ref().map_or_else(String::new, |g| g.code.clone());
    let record = grader.grade(&request.problem.fixed, &code, tests).await;
    Submission {
        code,
        label: Some(record.label),
        pass_rate: Some(record.pass_rate),
        source: generator.name().to_owned(),
        platform_correct: None,
        generated: Some(Provenance {
            generator: generator.name().to_owned(),
            seed,
            prompt_sha256: generation.as_ref().and_then(|g| g.prompt_sha256.clone()),
            submit: generation.as_ref().is_some_and(|g| g.submit),
            feedback: None,
            error,
        }),
        ..template
    }
}
