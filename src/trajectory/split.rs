//! Splits by held-out students and held-out problems, as in the reference study.
//!
//! A seeded share of students and of problems is held out. `train`: kept students on kept problems. `ns_op`
//! (new students, old problems): held-out students on kept problems. `ns_np` (new students, new problems):
//! held-out students on held-out problems. Kept students' rows on held-out problems belong to no split.

use std::collections::BTreeSet;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::Submission;
use crate::BadInput;

/// Which split a row falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Train,
    NsOp,
    NsNp,
    /// A kept student on a held-out problem: in no split.
    Unused,
}

impl Part {
    pub fn file_stem(self) -> &'static str {
        match self {
            Part::Train => "train",
            Part::NsOp => "ns_op",
            Part::NsNp => "ns_np",
            Part::Unused => "unused",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SplitSpec {
    pub seed: u64,
    /// Share of students held out, in (0, 1).
    pub test_students: f64,
    /// Share of problems held out, in (0, 1).
    pub test_problems: f64,
}

impl Default for SplitSpec {
    /// Seed 0, a fifth of the students and a fifth of the problems held out.
    fn default() -> Self {
        Self { seed: 0, test_students: 0.2, test_problems: 0.2 }
    }
}

/// The held-out students and problems for `rows`.
#[derive(Debug, Clone)]
pub struct Split {
    pub test_students: BTreeSet<String>,
    pub test_problems: BTreeSet<String>,
}

impl Split {
    pub fn new(rows: &[Submission], spec: &SplitSpec) -> Result<Self, BadInput> {
        for (what, share) in [("--test-students", spec.test_students), ("--test-problems", spec.test_problems)] {
            if !(share > 0.0 && share < 1.0) {
                return Err(BadInput(format!("{what}: {share} is not a share strictly between 0 and 1")));
            }
        }
        let students: BTreeSet<&str> = rows.iter().map(|r| r.student.as_str()).collect();
        let problems: BTreeSet<&str> = rows.iter().map(|r| r.problem.as_str()).collect();
        if students.len() < 2 || problems.len() < 2 {
            return Err(BadInput(format!(
                "cannot split {} students and {} problems: need at least 2 of each",
                students.len(),
                problems.len()
            )));
        }
        let mut rng = StdRng::seed_from_u64(spec.seed);
        Ok(Self {
            test_students: hold_out(students, spec.test_students, &mut rng),
            test_problems: hold_out(problems, spec.test_problems, &mut rng),
        })
    }

    pub fn part(&self, row: &Submission) -> Part {
        match (self.test_students.contains(&row.student), self.test_problems.contains(&row.problem)) {
            (false, false) => Part::Train,
            (true, false) => Part::NsOp,
            (true, true) => Part::NsNp,
            (false, true) => Part::Unused,
        }
    }
}

/// A seeded sample of `share` of `items` (at least one, at most all but one), independent of input order.
fn hold_out(items: BTreeSet<&str>, share: f64, rng: &mut StdRng) -> BTreeSet<String> {
    let mut items: Vec<&str> = items.into_iter().collect();
    let count = ((items.len() as f64 * share).round() as usize).clamp(1, items.len() - 1);
    items.shuffle(rng);
    items.into_iter().take(count).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(student: &str, problem: &str) -> Submission {
        Submission {
            student: student.into(),
            problem: problem.into(),
            time: "2020-01-01T00:00:00Z".parse().unwrap(),
            attempt: 1,
            code: String::new(),
            label: None,
            pass_rate: None,
            source: super::super::Source::Real,
            platform_correct: None,
            generated: None,
            extra: Default::default(),
        }
    }

    #[test]
    fn seeded_and_partitioned() {
        let rows: Vec<Submission> =
            (0..20).flat_map(|s| (0..10).map(move |p| row(&format!("s{s}"), &format!("p{p}")))).collect();
        let spec = SplitSpec { seed: 7, test_students: 0.25, test_problems: 0.2 };
        let a = Split::new(&rows, &spec).unwrap();
        let b = Split::new(&rows, &spec).unwrap();
        assert_eq!(a.test_students, b.test_students);
        assert_eq!((a.test_students.len(), a.test_problems.len()), (5, 2));
        let other = Split::new(&rows, &SplitSpec { seed: 8, ..spec.clone() }).unwrap();
        assert_ne!(a.test_students, other.test_students);
        let count = |part| rows.iter().filter(|r| a.part(r) == part).count();
        assert_eq!((count(Part::Train), count(Part::NsOp), count(Part::NsNp), count(Part::Unused)), (120, 40, 10, 30));
        assert!(Split::new(&rows, &SplitSpec { test_students: 1.0, ..spec }).is_err());
    }
}
