//! Rollouts with one generated attempt per real row: ground-truth-conditioned next steps (Experiment 2) and
//! stages (Experiment 1). Each output row keeps the real row's student, problem, time and attempt, so `score`
//! pairs it with the real one.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use anyhow::Result;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::output::{ResumableOutput, key};
use super::{Rollout, Summary, attempt_row, record};
use crate::generate::real_feedback::{previous_attempts, real_feedback, real_history, swapped_feedback};
use crate::generate::{ContextProblem, Feedback, Request, Target};
use crate::problems::Problem;
use crate::records::Progress;
use crate::trajectory::Submission;
use crate::trajectory::views::{self, NextStepItem, StageItem};

/// The student-context section for `context` rows of `rows` (one earlier problem), when asked for.
fn context(rows: &[Submission], context: &[usize], wanted: bool) -> Vec<ContextProblem> {
    match (wanted, context.first()) {
        (true, Some(&first)) => vec![ContextProblem {
            problem: rows[first].problem.clone(),
            codes: context.iter().map(|&i| rows[i].code.clone()).collect(),
        }],
        _ => Vec::new(),
    }
}

/// Whose grade a next step's FEEDBACK section shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShownFeedback {
    /// What the previous real attempt was graded.
    Own,
    /// A failing real attempt of another student at the same problem (the ablation: does the model read it?).
    Other,
}

/// Next steps for every real row of `rows` that has a predecessor, from up to `k` real predecessors, with the
/// student-context segment when `with_context`, and with `feedback` a FEEDBACK section (each previous real
/// attempt graded in the sandbox first; `progress` counts those grades, then the next steps).
pub async fn next_step(
    rollout: &Rollout,
    rows: &[Submission],
    k: usize,
    with_context: bool,
    feedback: Option<ShownFeedback>,
    out: &Arc<ResumableOutput>,
    progress: &dyn Progress,
) -> Result<Summary> {
    let shown = match feedback {
        Some(whose) => {
            let problems = rollout.problems.iter().map(|(id, p)| (id.clone(), p.problem.clone())).collect();
            let wanted = previous_attempts(rows, &[k]);
            let graded =
                real_feedback(rollout.grader.clone(), &problems, rows, &wanted, rollout.jobs, progress).await?;
            Some(match whose {
                ShownFeedback::Own => graded,
                ShownFeedback::Other => swapped_feedback(rows, &graded, rollout.seed),
            })
        }
        None => None,
    };
    let items = views::next_steps(rows, k).into_iter().map(|item| {
        let target = &rows[item.target];
        let problem = rollout.problems[&target.problem].problem.clone();
        (next_step_request(rows, &item, problem, with_context, shown.as_ref(), rollout.seed), target.clone())
    });
    run(rollout, items.collect(), out, progress).await
}

/// The request for next-step `item` of `rows`: its real predecessors (the last with its feedback, when
/// `feedback` holds it), and the student-context segment when `with_context`.
pub fn next_step_request(
    rows: &[Submission],
    item: &NextStepItem,
    problem: Arc<Problem>,
    with_context: bool,
    feedback: Option<&HashMap<usize, Feedback>>,
    seed: u64,
) -> Request {
    let target = &rows[item.target];
    Request {
        problem,
        student: target.student.clone(),
        history: real_history(rows, &item.priors, feedback),
        context: context(rows, &item.context, with_context),
        target: Target::Next,
        seed,
    }
}

/// The first, middle and last submission of every real stream of `rows`, each generated from the problem alone
/// (and the student context when `with_context`). A stream of one or two rows has fewer distinct stage rows,
/// and gets as many simulated ones.
pub async fn stages(
    rollout: &Rollout,
    rows: &[Submission],
    with_context: bool,
    out: &Arc<ResumableOutput>,
    progress: &dyn Progress,
) -> Result<Summary> {
    let mut seen = BTreeSet::new();
    let items = views::stages(rows).into_iter().filter(|item| seen.insert(item.target)).map(|item: StageItem| {
        let target = &rows[item.target];
        let request = Request {
            problem: rollout.problems[&target.problem].problem.clone(),
            student: target.student.clone(),
            history: Vec::new(),
            context: context(rows, &item.context.into_iter().collect::<Vec<_>>(), with_context),
            target: Target::Stage(item.stage),
            seed: rollout.seed,
        };
        (request, target.clone())
    });
    run(rollout, items.collect(), out, progress).await
}

/// Generate and grade one attempt per (request, real row), `rollout.jobs` at a time, skipping rows an earlier
/// run finished.
async fn run(
    rollout: &Rollout,
    items: Vec<(Request, Submission)>,
    out: &Arc<ResumableOutput>,
    progress: &dyn Progress,
) -> Result<Summary> {
    let items: Vec<_> =
        items.into_iter().filter(|(_, target)| rollout.wants(&target.student, &target.problem)).collect();
    progress.start(items.len() as u64);
    let mut summary = Summary::default();
    let permits = Arc::new(Semaphore::new(rollout.jobs.max(1)));
    let mut tasks = JoinSet::new();
    for (request, template) in items {
        if out.is_done(&key(&template)) {
            summary.skipped += 1;
            progress.advance(1);
            continue;
        }
        let tests = rollout.problems[&template.problem].tests.clone();
        let (generator, grader, seed) = (rollout.generator.clone(), rollout.grader.clone(), rollout.seed);
        let permit = permits.clone().acquire_owned().await.expect("the semaphore is never closed");
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
