//! What real students were shown: each real attempt graded in the sandbox and turned into the `FEEDBACK:`
//! section a simulated student sees in a stream ([`Feedback::from_record`]). Fine-tuning rows and ground-truth
//! next steps carry it, so one model sees one prompt layout whether its history is real or its own.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use anyhow::Result;
use indicatif::ProgressBar;

use super::{Attempt, Feedback};
use crate::grade::Grader;
use crate::grade::batch::{JobMaker, grade_all};
use crate::problems::Problem;
use crate::trajectory::Submission;
use crate::trajectory::views;

/// The feedback of `rows[i]` for every `i` in `wanted`, graded `jobs` at a time. A program submitted more than
/// once to the same problem is graded once (the grader is deterministic, so the copies share the record).
/// Rows on problems missing from `problems` get none.
pub async fn real_feedback(
    grader: Arc<Grader>,
    problems: &HashMap<String, Arc<Problem>>,
    rows: &[Submission],
    wanted: &BTreeSet<usize>,
    jobs: usize,
    progress: &ProgressBar,
) -> Result<HashMap<usize, Feedback>> {
    let mut first_of: HashMap<(&str, &str), usize> = HashMap::new();
    let mut distinct = Vec::new();
    for &i in wanted {
        let row = &rows[i];
        if problems.contains_key(&row.problem) {
            first_of.entry((row.problem.as_str(), row.code.as_str())).or_insert_with(|| {
                distinct.push(i);
                distinct.len() - 1
            });
        }
    }
    let mut maker = JobMaker::new(&grader);
    let mut graded_jobs = Vec::with_capacity(distinct.len());
    for &i in &distinct {
        graded_jobs.push(maker.job(&problems[&rows[i].problem], rows[i].code.clone()).await?);
    }
    progress.set_length(graded_jobs.len() as u64);
    let graded = grade_all(grader.clone(), graded_jobs, jobs, progress).await;
    let feedback: Vec<Feedback> = graded.iter().map(|g| Feedback::from_record(&g.record)).collect();
    Ok(wanted
        .iter()
        .filter_map(|&i| {
            let row = &rows[i];
            first_of.get(&(row.problem.as_str(), row.code.as_str())).map(|&d| (i, feedback[d].clone()))
        })
        .collect())
}

/// The real attempts `priors` of `rows` as a request's history, the last one with the feedback it got (the only
/// one a prompt shows) when `feedback` holds it.
pub fn real_history(rows: &[Submission], priors: &[usize], feedback: Option<&HashMap<usize, Feedback>>) -> Vec<Attempt> {
    let last = priors.last().copied();
    priors
        .iter()
        .map(|&i| Attempt {
            code: rows[i].code.clone(),
            feedback: if Some(i) == last { feedback.and_then(|f| f.get(&i).cloned()) } else { None },
        })
        .collect()
}

/// The rows whose feedback the next steps of `rows` with up to `k` priors show: each target's previous attempt.
pub fn previous_attempts(rows: &[Submission], ks: &[usize]) -> BTreeSet<usize> {
    ks.iter().flat_map(|&k| views::next_steps(rows, k)).filter_map(|item| item.priors.last().copied()).collect()
}
