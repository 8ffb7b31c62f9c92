//! Autoregressive streams: the generator starts from nothing, and every attempt is graded in the sandbox; its
//! label and failing examples go into the next request, until the attempt passes, the generator submits, or
//! the attempt limit is reached. Each simulated stream stands for a real one (same student, problem and start
//! time); attempts are spaced by a fixed simulated interval.

use std::sync::Arc;

use anyhow::Result;
use indicatif::ProgressBar;
use jiff::SignedDuration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::output::ResumableOutput;
use super::tutor::{HistoryItem, Tutor, TutorState};
use super::{Rollout, Summary, attempt_row, with_feedback};
use crate::generate::{Attempt, Feedback, Request, Target};
use crate::grade::Label;
use crate::problems::Problem;
use crate::trajectory::{self, REAL, Submission};

#[derive(Clone)]
pub struct StreamOptions {
    /// Attempts after which a stream stops even without success.
    pub max_attempts: u32,
    /// Simulated time between two attempts.
    pub interval: SignedDuration,
    /// Asked for a hint after every attempt that does not end the stream.
    pub tutor: Option<Arc<dyn Tutor>>,
}

/// Simulate one stream for every (student, problem) stream of `rows`, continuing streams an earlier run of the
/// same output left unfinished.
pub async fn streams(
    rollout: &Rollout,
    rows: &[Submission],
    options: StreamOptions,
    out: &Arc<ResumableOutput>,
    progress: &ProgressBar,
) -> Result<Summary> {
    let real_streams = trajectory::streams(rows);
    progress.set_length(real_streams.len() as u64);
    let permits = Arc::new(Semaphore::new(rollout.jobs.max(1)));
    let mut tasks = JoinSet::new();
    let mut summary = Summary::default();
    for ((student, problem), indices) in real_streams {
        let earlier = out.earlier_rows(student, problem);
        summary.skipped += earlier.len();
        let first = &rows[indices[0]];
        let stream = Stream {
            rollout_seed: rollout.seed,
            template: Submission { code: String::new(), label: None, pass_rate: None, source: REAL.into(), platform_correct: None, generated: None, ..first.clone() },
            earlier,
            options: options.clone(),
        };
        let prepared = &rollout.problems[problem];
        let (generator, grader, tests, problem) =
            (rollout.generator.clone(), rollout.grader.clone(), prepared.tests.clone(), prepared.problem.clone());
        let (out, progress) = (out.clone(), progress.clone());
        let permit = permits.clone().acquire_owned().await.expect("the semaphore is never closed");
        tasks.spawn(async move {
            let mut done = Summary::default();
            let mut history = stream.history();
            let start_at = history.len() as u32 + 1;
            if !stream.finished() {
                for attempt in start_at..=stream.options.max_attempts {
                    let request = Request {
                        problem: problem.clone(),
                        student: stream.template.student.clone(),
                        history: history.clone(),
                        context: Vec::new(),
                        target: Target::Next,
                        seed: stream.rollout_seed,
                    };
                    let template = stream.row_template(attempt);
                    let (row, record) = attempt_row(&*generator, &grader, &tests, &request, template, stream.rollout_seed).await;
                    let failed = row.generated.as_ref().is_some_and(|g| g.error.is_some());
                    let submitted = row.generated.as_ref().is_some_and(|g| g.submit);
                    let last = failed || submitted || record.label == Label::NoError || attempt == stream.options.max_attempts;
                    let mut feedback = Feedback::from_record(&record);
                    if let (false, Some(tutor)) = (last, &stream.options.tutor) {
                        let state = tutor_state(&problem, &history, &row, &feedback, record.pass_rate);
                        match tutor.hint(state).await {
                            Ok(hint) => feedback.hint = Some(hint),
                            Err(e) => feedback.tutor_error = Some(format!("{e:#}")),
                        }
                    }
                    let row = if last { row } else { with_feedback(row, &feedback) };
                    out.append(&row)?;
                    done.written += 1;
                    done.failed += usize::from(failed);
                    history.push(Attempt { code: row.code, feedback: Some(feedback) });
                    if last {
                        break;
                    }
                }
            }
            drop(permit);
            progress.inc(1);
            anyhow::Ok(done)
        });
    }
    while let Some(done) = tasks.join_next().await {
        let done = done.expect("a stream task panicked")?;
        summary.written += done.written;
        summary.failed += done.failed;
    }
    Ok(summary)
}

/// The JSON a tutor is sent about `row`, the latest attempt.
fn tutor_state(problem: &Problem, history: &[Attempt], row: &Submission, feedback: &Feedback, pass_rate: f64) -> String {
    let state = TutorState {
        problem: problem.into(),
        attempt: row.attempt,
        code: &row.code,
        grade: feedback,
        pass_rate,
        history: history
            .iter()
            .enumerate()
            .map(|(i, a)| HistoryItem {
                attempt: i as u32 + 1,
                code: &a.code,
                label: a.feedback.as_ref().map_or("unknown", |f| f.label.as_str()),
            })
            .collect(),
    };
    serde_json::to_string(&state).expect("a tutor state always serializes")
}

/// One stream being simulated: the real stream's first row (student, problem, start time) and what an earlier
/// run already wrote.
struct Stream {
    rollout_seed: u64,
    template: Submission,
    earlier: Vec<Submission>,
    options: StreamOptions,
}

impl Stream {
    fn history(&self) -> Vec<Attempt> {
        self.earlier
            .iter()
            .map(|r| Attempt {
                code: r.code.clone(),
                feedback: r.generated.as_ref().and_then(|g| g.feedback.clone()).and_then(|f| serde_json::from_value(f).ok()),
            })
            .collect()
    }

    /// The earlier run ended this stream: its last row passed, was submitted, failed, or was the last allowed.
    fn finished(&self) -> bool {
        self.earlier.last().is_some_and(|r| {
            let g = r.generated.as_ref();
            r.label == Some(Label::NoError)
                || g.is_some_and(|g| g.submit || g.error.is_some())
                || r.attempt >= self.options.max_attempts
        })
    }

    fn row_template(&self, attempt: u32) -> Submission {
        let offset = self.options.interval * i32::try_from(attempt - 1).unwrap_or(i32::MAX);
        Submission { attempt, time: self.template.time + offset, ..self.template.clone() }
    }
}
