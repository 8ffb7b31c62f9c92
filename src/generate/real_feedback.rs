//! What real students were shown: each real attempt graded in the sandbox and turned into the `FEEDBACK:`
//! section a simulated student sees in a stream ([`Feedback::from_record`]). Fine-tuning rows and ground-truth
//! next steps carry it, so one model sees one prompt layout whether its history is real or its own.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use anyhow::Result;

use super::{Attempt, Feedback};
use crate::grade::Grader;
use crate::grade::batch::grade_distinct;
use crate::problems::Problem;
use crate::records::Progress;
use crate::trajectory::Submission;
use crate::trajectory::views;

/// The feedback of `rows[i]` for every `i` in `wanted`, graded `jobs` at a time, each distinct program once
/// ([`grade_distinct`]). Rows on problems missing from `problems` get none.
pub async fn real_feedback(
    grader: Arc<Grader>,
    problems: &HashMap<String, Arc<Problem>>,
    rows: &[Submission],
    wanted: &BTreeSet<usize>,
    jobs: usize,
    progress: &dyn Progress,
) -> Result<HashMap<usize, Feedback>> {
    let known: Vec<usize> = wanted.iter().copied().filter(|&i| problems.contains_key(&rows[i].problem)).collect();
    let items = known.iter().map(|&i| (&*problems[&rows[i].problem], rows[i].code.clone())).collect();
    progress.start(known.len() as u64);
    let graded = grade_distinct(&grader, items, jobs, progress).await?;
    Ok(known.into_iter().zip(graded).map(|(i, g)| (i, Feedback::from_record(&g.record))).collect())
}

/// The real attempts `priors` of `rows` as a request's history, the last one with the feedback it got (the only
/// one a prompt shows) when `feedback` holds it.
pub fn real_history(
    rows: &[Submission],
    priors: &[usize],
    feedback: Option<&HashMap<usize, Feedback>>,
) -> Vec<Attempt> {
    let last = priors.last().copied();
    priors
        .iter()
        .map(|&i| Attempt {
            code: rows[i].code.clone(),
            feedback: if Some(i) == last { feedback.and_then(|f| f.get(&i).cloned()) } else { None },
        })
        .collect()
}

/// Another student's feedback in place of each row's own, for the ablation that asks whether a model reads its
/// feedback: for every row of `own`, the feedback of a failing real attempt (any label but `no_error`) by another
/// student on the same problem, drawn with `seed` from those `own` holds. A row with no such attempt gets none.
pub fn swapped_feedback(rows: &[Submission], own: &HashMap<usize, Feedback>, seed: u64) -> HashMap<usize, Feedback> {
    use rand::SeedableRng as _;
    use rand::seq::IndexedRandom as _;
    let mut failing: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut keys: Vec<usize> = own.keys().copied().collect();
    keys.sort_unstable();
    for &i in &keys {
        if own[&i].label != crate::records::Label::NoError {
            failing.entry(rows[i].problem.as_str()).or_default().push(i);
        }
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    keys.into_iter()
        .filter_map(|i| {
            let others: Vec<usize> = failing
                .get(rows[i].problem.as_str())?
                .iter()
                .copied()
                .filter(|&j| rows[j].student != rows[i].student)
                .collect();
            others.choose(&mut rng).map(|&j| (i, own[&j].clone()))
        })
        .collect()
}

/// The rows whose feedback the next steps of `rows` with up to `k` priors show: each target's previous attempt.
pub fn previous_attempts(rows: &[Submission], ks: &[usize]) -> BTreeSet<usize> {
    ks.iter().flat_map(|&k| views::next_steps(rows, k)).filter_map(|item| item.priors.last().copied()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::Label;

    fn row(student: &str, problem: &str) -> Submission {
        serde_json::from_value(serde_json::json!({
            "student": student, "problem": problem, "time": "2020-01-01T00:00:00Z", "attempt": 1, "code": "", "source": "real"
        }))
        .unwrap()
    }

    fn feedback(label: Label, message: &str) -> Feedback {
        Feedback { label, message: Some(message.into()), failing: vec![], hint: None, tutor_error: None }
    }

    /// The ablation's feedback comes from another student's failing attempt at the same problem, never from the
    /// row's own student, a passing attempt or another problem.
    #[test]
    fn swapped_feedback_is_another_students_failure_on_the_same_problem() {
        let rows = vec![row("a", "p"), row("a", "p"), row("b", "p"), row("c", "p"), row("d", "q"), row("e", "q")];
        let own = HashMap::from([
            (0, feedback(Label::Logical, "a0")),
            (1, feedback(Label::Runtime, "a1")),
            (2, feedback(Label::NoError, "b2")),
            (3, feedback(Label::Compile, "c3")),
            (4, feedback(Label::Logical, "d4")),
            (5, feedback(Label::NoError, "e5")),
        ]);
        for seed in 0..10 {
            let swapped = swapped_feedback(&rows, &own, seed);
            assert_eq!(
                swapped[&0].message.as_deref(),
                Some("c3"),
                "seed {seed}: c is the only other student failing p"
            );
            assert_eq!(swapped[&1].message.as_deref(), Some("c3"), "seed {seed}");
            assert!(
                matches!(swapped[&2].message.as_deref(), Some("a0" | "a1" | "c3")),
                "seed {seed}: {:?}",
                swapped[&2]
            );
            assert!(matches!(swapped[&3].message.as_deref(), Some("a0" | "a1")), "seed {seed}: {:?}", swapped[&3]);
            assert_eq!(swapped[&5].message.as_deref(), Some("d4"), "seed {seed}");
            assert!(!swapped.contains_key(&4), "seed {seed}: nobody else failed q");
            assert_eq!(swapped, swapped_feedback(&rows, &own, seed), "seeded");
        }
    }
}
