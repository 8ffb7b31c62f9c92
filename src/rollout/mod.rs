//! Rollouts: generators write attempts, the sandbox grades each one, and the rows go out as trajectories.
//!
//! Modes:
//! - **next step** (`single.rs`; Experiment 2, ground-truth-conditioned): each real submission that has a
//!   predecessor is generated from its `k` real predecessors (and, optionally, the student-context segment); the
//!   row keeps the target's student, problem, time and attempt, so `score` pairs it with the real one.
//! - **stages** (`single.rs`; Experiment 1): the first, middle and last submission of each real stream, from the
//!   problem alone (and optionally the student context).
//! - **stream** (`stream.rs`; autoregressive): from nothing, attempt after attempt, each graded in the sandbox
//!   with the outcome fed into the next request, until `no_error`, `<SUBMIT>` or the attempt limit.
//!
//! Output rows are appended and flushed one at a time ([`output::ResumableOutput`]); a rerun skips finished rows.

pub mod output;
mod single;
mod stream;
pub mod tutor;

pub use single::{ShownFeedback, next_step, next_step_request, stages};
pub use stream::{StreamOptions, streams};

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use anyhow::Result;

use crate::generate::{Feedback, Generation, Generator, NoCode, Request};
use crate::grade::{GradeRecord, Grader, Tests};
use crate::problems::Problem;
use crate::records::Progress;
use crate::trajectory::{Provenance, Source, Submission};
use output::ResumableOutput;

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
    /// When set, only the targets of these (student, problem) streams are generated (a shard's share); every row
    /// still serves as history and student context.
    pub only_streams: Option<BTreeSet<(String, String)>>,
}

impl Rollout {
    fn wants(&self, student: &str, problem: &str) -> bool {
        self.only_streams.as_ref().is_none_or(|only| only.contains(&(student.to_owned(), problem.to_owned())))
    }
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

fn record(
    done: Result<Submission, tokio::task::JoinError>,
    out: &ResumableOutput,
    summary: &mut Summary,
    progress: &dyn Progress,
) -> Result<()> {
    let row = done.expect("a rollout task panicked");
    if row.generated.as_ref().is_some_and(|g| g.error.is_some()) {
        summary.failed += 1;
    }
    out.append(&row)?;
    summary.written += 1;
    progress.advance(1);
    Ok(())
}

/// Generate one attempt for `request`, grade it, and make its output row from `template` (student, problem,
/// time, attempt); the grade comes back too, for the feedback of the next attempt.
async fn attempt_row(
    generator: &dyn Generator,
    grader: &Grader,
    tests: &Tests,
    request: &Request,
    template: Submission,
    seed: u64,
) -> (Submission, GradeRecord) {
    let (generation, error) = match generator.generate(request).await {
        Ok(g) => (Some(g), None),
        // A reply without code still shows what the model wrote.
        Err(e) => match e.downcast_ref::<NoCode>() {
            Some(no_code) => {
                let reply = Generation {
                    raw: Some(no_code.raw.clone()),
                    truncated: no_code.truncated,
                    ..Generation::default()
                };
                (Some(reply), Some(format!("{e:#}")))
            }
            None => (None, Some(format!("{e:#}"))),
        },
    };
    let code = generation.as_ref().map_or_else(String::new, |g| g.code.clone());
    let record = grader.grade(&request.problem.fixed, &code, tests).await;
    let row = Submission {
        code,
        label: Some(record.label),
        pass_rate: Some(record.pass_rate),
        source: Source::Generator(generator.name().to_owned()),
        platform_correct: None,
        generated: Some(Provenance {
            generator: generator.name().to_owned(),
            seed,
            prompt_sha256: generation.as_ref().and_then(|g| g.prompt_sha256.clone()),
            submit: generation.as_ref().is_some_and(|g| g.submit),
            raw: generation.as_ref().and_then(|g| g.raw.clone()),
            truncated: generation.as_ref().is_some_and(|g| g.truncated),
            feedback: None,
            error,
        }),
        ..template
    };
    (row, record)
}

/// The feedback a row records: what the student was shown after it.
fn with_feedback(mut row: Submission, feedback: &Feedback) -> Submission {
    if let Some(generated) = row.generated.as_mut() {
        generated.feedback = Some(feedback.clone());
    }
    row
}
