//! Ground-truth-conditioned next steps (Experiment 2).

use std::sync::Arc;

use anyhow::Result;
use indicatif::ProgressBar;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::output::{ResumableOutput, key};
use super::{Rollout, Summary, attempt_row, record};
use crate::generate::{Attempt, ContextProblem, Request, Target};
use crate::trajectory::Submission;
use crate::trajectory::views::{NextStepItem, next_steps};

/// Ground-truth-conditioned next steps for every real row of `rows` that has a predecessor, from up to `k` real
/// predecessors, with the student-context segment when `with_context`.
pub async fn next_step(
    rollout: &Rollout,
    rows: &[Submission],
    k: usize,
    with_context: bool,
    out: &Arc<ResumableOutput>,
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
            let (row, _) = attempt_row(&*generator, &grader, &tests, &request, template, seed).await;
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

