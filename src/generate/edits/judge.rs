//! Grading the edit model's candidate attempts, so it can pick one with the outcome it drew.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::grade::{GradeRecord, Grader, Tests};
use crate::problems::Problem;

/// A grader with each problem's parsed tests kept. Give it a grader of its own: a rollout's grader has one
/// sandbox slot per job, and the edit model grades while the rollout does.
pub struct Judge {
    grader: Arc<Grader>,
    tests: Mutex<HashMap<String, Arc<Tests>>>,
    /// Time spent in [`Judge::grade`], summed over calls, in nanoseconds (`bench edits` leaves it out).
    grading_nanos: AtomicU64,
}

impl Judge {
    pub fn new(grader: Arc<Grader>) -> Self {
        Self { grader, tests: Mutex::new(HashMap::new()), grading_nanos: AtomicU64::new(0) }
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
        let known = self.tests.lock().expect("no panic while holding the lock").get(&problem.id).cloned();
        let tests = match known {
            Some(tests) => tests,
            None => {
                let tests = Arc::new(
                    self.grader
                        .problem_tests(problem)
                        .await
                        .with_context(|| format!("reading the tests of {}", problem.id))?,
                );
                self.tests
                    .lock()
                    .expect("no panic while holding the lock")
                    .insert(problem.id.clone(), Arc::clone(&tests));
                tests
            }
        };
        Ok(self.grader.grade(&problem.fixed, code, &tests).await)
    }
}
