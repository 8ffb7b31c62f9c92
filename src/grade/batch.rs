//! Grading many submissions at once, `parallel` at a time, results in input order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{GradeRecord, Grader, Tests};
use crate::problems::Problem;
use crate::records::Progress;

/// One submission to grade, with its problem's fixed code and tests.
struct Job {
    fixed: Arc<str>,
    code: String,
    tests: Arc<Tests>,
}

/// A finished job: its record and the wall-clock time its grade took.
#[derive(Debug, Clone)]
pub struct Graded {
    pub record: GradeRecord,
    pub elapsed: Duration,
}

/// Grade each `(problem, code)` of `items`, `parallel` at a time, results in input order: the one way to grade
/// many submissions. Each problem's tests are parsed once per grader ([`Grader::tests_for`]); `progress`
/// advances once per finished grade (the caller starts it: a run may grade in several calls).
pub async fn grade_many(
    grader: &Arc<Grader>,
    items: Vec<(&Problem, String)>,
    parallel: usize,
    progress: &dyn Progress,
) -> Result<Vec<Graded>> {
    let mut jobs = Vec::with_capacity(items.len());
    for (problem, code) in items {
        let tests =
            grader.tests_for(problem).await.with_context(|| format!("preparing the tests of {}", problem.id))?;
        jobs.push(Job { fixed: problem.fixed.as_str().into(), code, tests });
    }
    Ok(grade_jobs(Arc::clone(grader), jobs, parallel, progress).await)
}

/// [`grade_many`] for logs that repeat themselves: a code submitted more than once to the same problem is graded
/// once and the copies share its record (grades do not depend on who submitted or when; real logs resubmit
/// unchanged code, 15% of NewCaledonia's 5,690 submissions). Results in input order; `progress` advances once per
/// item, the copies' all at the end.
pub async fn grade_distinct(
    grader: &Arc<Grader>,
    items: Vec<(&Problem, String)>,
    parallel: usize,
    progress: &dyn Progress,
) -> Result<Vec<Graded>> {
    let mut first_of: HashMap<(String, String), usize> = HashMap::new();
    let mut distinct = Vec::new();
    let mut slots = Vec::with_capacity(items.len());
    for (problem, code) in items {
        let key = (problem.id.clone(), code);
        let slot = match first_of.get(&key) {
            Some(&slot) => slot,
            None => {
                distinct.push((problem, key.1.clone()));
                first_of.insert(key, distinct.len() - 1);
                distinct.len() - 1
            }
        };
        slots.push(slot);
    }
    let copies = slots.len() - distinct.len();
    let graded = grade_many(grader, distinct, parallel, progress).await?;
    progress.advance(copies as u64);
    Ok(slots.iter().map(|&slot| graded[slot].clone()).collect())
}

async fn grade_jobs(grader: Arc<Grader>, jobs: Vec<Job>, parallel: usize, progress: &dyn Progress) -> Vec<Graded> {
    let permits = Arc::new(Semaphore::new(parallel.max(1)));
    let mut set = JoinSet::new();
    let mut records: Vec<Option<Graded>> = (0..jobs.len()).map(|_| None).collect();
    let mut finish = |done: Result<(usize, Graded), tokio::task::JoinError>| {
        let (index, graded) = done.expect("a grading task panicked");
        records[index] = Some(graded);
        progress.advance(1);
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
