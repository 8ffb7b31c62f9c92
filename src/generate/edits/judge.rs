//! Grading the edit model's candidate attempts, so it can pick one with the outcome it drew.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::grade::{GradeRecord, Grader};
use crate::problems::Problem;

/// A grader that times its grades. Give it a grader of its own: a rollout's grader has one
/// sandbox slot per job, and the edit model grades while the rollout does.
pub struct Judge {
    grader: Arc<Grader>,
    /// Time spent in [`Judge::grade`], summed over calls, in nanoseconds (`bench edits` leaves it out).
    grading_nanos: AtomicU64,
}

impl Judge {
    pub fn new(grader: Arc<Grader>) -> Self {
        Self { grader, grading_nanos: AtomicU64::new(0) }
    }

    /// Time spent grading so far, summed over concurrent calls.
    pub fn grading_time(&self) -> Duration {
        Duration::from_nanos(self.grading_nanos.load(Ordering::Relaxed))
    }

    /// `code` graded against `problem`'s tests.
    pub async fn grade(&self, problem: &Problem, code: &str) -> Result<GradeRecord> {
        let started = Instant::now();
        let record = self.grade_untimed(problem, code).await;
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.grading_nanos.fetch_add(nanos, Ordering::Relaxed);
        record
    }

    async fn grade_untimed(&self, problem: &Problem, code: &str) -> Result<GradeRecord> {
        let tests =
            self.grader.tests_for(problem).await.with_context(|| format!("reading the tests of {}", problem.id))?;
        Ok(self.grader.grade(&problem.fixed, code, &tests).await)
    }
}
