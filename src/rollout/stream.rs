//! Autoregressive streams: the generator starts from nothing, and every attempt is graded in the sandbox; its
//! label and failing examples go into the next request, until the attempt passes, the generator submits, or
//! the attempt limit is reached. Each simulated stream stands for a real one (same student, problem and start
//! time); attempts are spaced by a fixed simulated interval.

use std::sync::Arc;

use anyhow::Result;
use jiff::SignedDuration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::output::ResumableOutput;
use super::tutor::{HistoryItem, Tutor, TutorState};
use super::{Rollout, Summary, attempt_row, with_feedback};
use crate::generate::{Attempt, Feedback, Generator, Request, Target};
use crate::grade::{Grader, Label, Tests};
use crate::problems::Problem;
use crate::records::Progress;
use crate::trajectory::{self, Source, Submission};

#[derive(Clone)]
pub struct StreamOptions {
    /// Attempts after which a stream stops even without success.
    pub max_attempts: u32,
    /// Simulated time between two attempts.
    pub interval: SignedDuration,
    /// Asked for a hint after every attempt that does not end the stream.
    pub tutor: Option<Arc<dyn Tutor>>,
    /// Earlier attempts a request shows, the most recent ones (`None`: all). A model fine-tuned on next steps
    /// with k real predecessors meets its training layout with k.
    pub shown_attempts: Option<usize>,
}

/// Simulate one stream for every (student, problem) stream of `rows`, continuing streams an earlier run of the
/// same output left unfinished.
pub async fn streams(
    rollout: &Rollout,
    rows: &[Submission],
    options: StreamOptions,
    out: &Arc<ResumableOutput>,
    progress: &dyn Progress,
) -> Result<Summary> {
    let mut real_streams = trajectory::streams(rows);
    real_streams.retain(|(student, problem), _| rollout.wants(student, problem));
    progress.start(real_streams.len() as u64);
    let permits = Arc::new(Semaphore::new(rollout.jobs.max(1)));
    let mut tasks = JoinSet::new();
    let mut summary = Summary::default();
    for ((student, problem), indices) in real_streams {
        let earlier = out.earlier_rows(student, problem);
        summary.skipped += earlier.len();
        let first = &rows[indices[0]];
        let stream = Stream {
            rollout_seed: rollout.seed,
            template: Submission {
                code: String::new(),
                label: None,
                pass_rate: None,
                source: Source::Real,
                platform_correct: None,
                generated: None,
                ..first.clone()
            },
            earlier,
            options: options.clone(),
        };
        let prepared = &rollout.problems[problem];
        let parts = Parts {
            generator: rollout.generator.clone(),
            grader: rollout.grader.clone(),
            tests: prepared.tests.clone(),
            problem: prepared.problem.clone(),
            out: out.clone(),
        };
        let permit = permits.clone().acquire_owned().await.expect("the semaphore is never closed");
        tasks.spawn(async move {
            let done = stream.run(parts).await;
            drop(permit);
            done
        });
    }
    while let Some(done) = tasks.join_next().await {
        let done = done.expect("a stream task panicked")?;
        progress.advance(1);
        summary.written += done.written;
        summary.failed += done.failed;
    }
    Ok(summary)
}

/// The JSON a tutor is sent about `row`, the latest attempt.
fn tutor_state(
    problem: &Problem,
    history: &[Attempt],
    row: &Submission,
    feedback: &Feedback,
    pass_rate: f64,
) -> String {
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

/// What a stream task needs besides its stream.
struct Parts {
    generator: Arc<dyn Generator>,
    grader: Arc<Grader>,
    tests: Arc<Tests>,
    problem: Arc<Problem>,
    out: Arc<ResumableOutput>,
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
    /// Generate, grade and write attempts until the stream ends (or resume where an earlier run stopped).
    async fn run(self, parts: Parts) -> Result<Summary> {
        let mut done = Summary::default();
        if self.finished() {
            return Ok(done);
        }
        let mut history = self.history();
        for attempt in history.len() as u32 + 1..=self.options.max_attempts {
            let shown = self.options.shown_attempts.map_or(0, |k| history.len().saturating_sub(k));
            let request = Request {
                problem: parts.problem.clone(),
                student: self.template.student.clone(),
                history: history[shown..].to_vec(),
                context: Vec::new(),
                target: Target::Next,
                seed: self.rollout_seed,
            };
            let (row, record) = attempt_row(
                &*parts.generator,
                &parts.grader,
                &parts.tests,
                &request,
                self.row_template(attempt),
                self.rollout_seed,
            )
            .await;
            let failed = row.generated.as_ref().is_some_and(|g| g.error.is_some());
            let submitted = row.generated.as_ref().is_some_and(|g| g.submit);
            let last = failed || submitted || record.label == Label::NoError || attempt == self.options.max_attempts;
            let mut feedback = Feedback::from_record(&record);
            if let (false, Some(tutor)) = (last, &self.options.tutor) {
                let state = tutor_state(&parts.problem, &history, &row, &feedback, record.pass_rate);
                match tutor.hint(state).await {
                    Ok(hint) => feedback.hint = Some(hint),
                    Err(e) => feedback.tutor_error = Some(format!("{e:#}")),
                }
            }
            let row = if last { row } else { with_feedback(row, &feedback) };
            parts.out.append(&row)?;
            done.written += 1;
            done.failed += usize::from(failed);
            history.push(Attempt { code: row.code, feedback: Some(feedback) });
            if last {
                break;
            }
        }
        Ok(done)
    }

    fn history(&self) -> Vec<Attempt> {
        self.earlier
            .iter()
            .map(|r| Attempt { code: r.code.clone(), feedback: r.generated.as_ref().and_then(|g| g.feedback.clone()) })
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
