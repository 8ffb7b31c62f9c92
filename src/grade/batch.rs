//! Grading many submissions at once, `parallel` at a time, results in input order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use indicatif::ProgressBar;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{GradeRecord, Grader, Tests};
use crate::problems::Problem;

/// One submission to grade, with its problem's fixed code and tests.
#[derive(Clone)]
pub struct Job {
    pub fixed: Arc<str>,
    pub code: String,
    pub tests: Arc<Tests>,
}

/// Makes jobs for submissions to problems, parsing each problem's tests once.
pub struct JobMaker<'g> {
    grader: &'g Grader,
    prepared: HashMap<String, (Arc<str>, Arc<Tests>)>,
}

impl<'g> JobMaker<'g> {
    pub fn new(grader: &'g Grader) -> Self {
        Self { grader, prepared: HashMap::new() }
    }

    pub async fn job(&mut self, problem: &Problem, code: String) -> Result<Job> {
        if !self.prepared.contains_key(&problem.id) {
            let tests = Arc::new(self.grader.problem_tests(problem).await?);
            self.prepared.insert(problem.id.clone(), (problem.fixed.as_str().into(), tests));
        }
        let (fixed, tests) = &self.prepared[&problem.id];
        Ok(Job { fixed: fixed.clone(), code, tests: tests.clone() })
    }
}

/// A finished job: its record and the wall-clock time its grade took.
#[derive(Debug, Clone)]
pub struct Graded {
    pub record: GradeRecord,
    pub elapsed: Duration,
}

/// Grade every job; `progress` advances once per finished job.
pub async fn grade_all(grader: Arc<Grader>, jobs: Vec<Job>, parallel: usize, progress: &ProgressBar) -> Vec<Graded> {
    let permits = Arc::new(Semaphore::new(parallel.max(1)));
    let mut set = JoinSet::new();
    let mut records: Vec<Option<Graded>> = vec![None; jobs.len()];
    let mut finish = |done: Result<(usize, Graded), tokio::task::JoinError>| {
        let (index, graded) = done.expect("a grading task panicked");
        records[index] = Some(graded);
        progress.inc(1);
    };
    for (index, job) in jobs.into_iter().enumerate() {
        let permit = permits.clone().acquire_owned().await.expect("the semaphore is never closed");
        let grader = grader.clone();
        set.spawn(async move {
            let start = Instant::now();
            let record = grader.grade(&job.fixed, &job.code, &job.tests).await;
            drop(permit);
            (index, Graded { record, elapsed: start.elapsed() })
        });
        // Collect finished tasks as we go so they do not pile up in the set.
        while let Some(done) = set.try_join_next() {
            finish(done);
        }
    }
    while let Some(done) = set.join_next().await {
        finish(done);
    }
    records.into_iter().map(|r| r.expect("every job reports once")).collect()
}
