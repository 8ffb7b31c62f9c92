//! The weight-free student simulator: real successors of similar real states.
//!
//! Fitted on training trajectories. For a next attempt it finds the `k` real submissions (of other students, same
//! problem) nearest to the student's last attempt by character edit distance, picks one with the request's seed,
//! and returns what that student wrote next; a neighbour that ended its stream means "submit this". A stage
//! target (or a first attempt) draws a real submission at that stage. On a problem the training set never saw,
//! it retrieves from every problem and renames the retrieved code's first function to the problem's entry.

use std::collections::HashMap;

use anyhow::{Result, bail};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use sha2::{Digest, Sha256};

use super::{BoxFuture, Generation, Generator, Request, Target};
use crate::metrics::edit_distance;
use crate::problems::top_level_functions;
use crate::trajectory::views::Stage;
use crate::trajectory::{Submission, streams};

/// One real submission and where it sits in its stream.
struct State {
    student: String,
    code: String,
    /// The state the student submitted next, if any.
    next: Option<usize>,
    position: usize,
    stream_len: usize,
}

pub struct Retrieval {
    states: Vec<State>,
    by_problem: HashMap<String, Vec<usize>>,
    /// Neighbours the seeded choice picks from.
    k: usize,
}

impl Retrieval {
    /// Fit on `rows` (a training split), drawing among the `k` nearest states.
    pub fn fit(rows: &[Submission], k: usize) -> Self {
        let mut states = Vec::with_capacity(rows.len());
        let mut by_problem: HashMap<String, Vec<usize>> = HashMap::new();
        for ((student, problem), stream) in streams(rows) {
            let first = states.len();
            for (position, &row) in stream.iter().enumerate() {
                let next = (position + 1 < stream.len()).then_some(first + position + 1);
                states.push(State {
                    student: student.to_owned(),
                    code: rows[row].code.clone(),
                    next,
                    position,
                    stream_len: stream.len(),
                });
                by_problem.entry(problem.to_owned()).or_default().push(first + position);
            }
        }
        Self { states, by_problem, k: k.max(1) }
    }

    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    fn pick(&self, request: &Request) -> Result<Generation> {
        let mut rng = StdRng::seed_from_u64(seed_for(request));
        let others = |s: &usize| self.states[*s].student != request.student;
        let same: Vec<usize> =
            self.by_problem.get(&request.problem.id).into_iter().flatten().copied().filter(others).collect();
        let unseen = same.is_empty();
        let pool: Vec<usize> = if unseen { (0..self.states.len()).filter(others).collect() } else { same };
        let (code, submit) = match (request.target, request.history.last()) {
            (Target::Next, Some(last)) => {
                let mut near: Vec<(usize, usize)> =
                    pool.iter().map(|&s| (edit_distance(&last.code, &self.states[s].code), s)).collect();
                near.sort_unstable();
                near.truncate(self.k);
                let Some(&(_, chosen)) = near.get(rng.random_range(0..near.len().max(1))) else {
                    bail!("the retrieval simulator has no training submissions to draw from");
                };
                match self.states[chosen].next {
                    Some(next) => (self.states[next].code.clone(), false),
                    None => (self.states[chosen].code.clone(), true),
                }
            }
            (Target::Stage(stage), _) => self.draw_at(&pool, stage, &mut rng)?,
            // A next attempt after nothing is a first attempt.
            (Target::Next, None) => self.draw_at(&pool, Stage::First, &mut rng)?,
        };
        let code = match (unseen, request.problem.entry.first()) {
            (true, Some(entry)) => rename_first_function(&code, entry),
            _ => code,
        };
        Ok(Generation { code, submit, ..Generation::default() })
    }

    /// A seeded draw among the states of `pool` at `stage` of their streams; the last stage submits.
    fn draw_at(&self, pool: &[usize], stage: Stage, rng: &mut StdRng) -> Result<(String, bool)> {
        let at: Vec<usize> = pool
            .iter()
            .copied()
            .filter(|&s| self.states[s].position == stage.position(self.states[s].stream_len))
            .collect();
        let Some(&chosen) = at.get(rng.random_range(0..at.len().max(1))) else {
            bail!("the retrieval simulator has no training submissions to draw from");
        };
        Ok((self.states[chosen].code.clone(), stage == Stage::Last))
    }
}

impl Generator for Retrieval {
    fn name(&self) -> &str {
        "retrieval"
    }

    fn generate<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, Result<Generation>> {
        Box::pin(async move { self.pick(request) })
    }
}

/// A seed that differs per (seed, student, problem, attempt, target), so draws are independent but repeatable.
pub(super) fn seed_for(request: &Request) -> u64 {
    let mut h = Sha256::new();
    h.update(request.seed.to_le_bytes());
    h.update(request.student.as_bytes());
    h.update([0]);
    h.update(request.problem.id.as_bytes());
    h.update((request.history.len() as u64).to_le_bytes());
    h.update(format!("{:?}", request.target).as_bytes());
    u64::from_le_bytes(h.finalize()[..8].try_into().expect("8 bytes"))
}

/// `code` with its first top-level function (and every whole-word use of its name) renamed to `entry`.
fn rename_first_function(code: &str, entry: &str) -> String {
    let Some((old, _)) = top_level_functions(code).into_iter().next() else { return code.to_owned() };
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find(old.as_str()) {
        out.push_str(&rest[..at]);
        let whole_word =
            !out.chars().last().is_some_and(is_ident) && !rest[at + old.len()..].chars().next().is_some_and(is_ident);
        out.push_str(if whole_word { entry } else { &old });
        rest = &rest[at + old.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::generate::Attempt;
    use crate::problems::Problem;
    use crate::trajectory::Source;

    fn row(student: &str, problem: &str, attempt: u32, code: &str) -> Submission {
        Submission {
            student: student.into(),
            problem: problem.into(),
            time: format!("2020-01-01T10:{attempt:02}:00Z").parse().unwrap(),
            attempt,
            code: code.into(),
            label: None,
            pass_rate: None,
            source: Source::Real,
            platform_correct: None,
            generated: None,
            extra: Default::default(),
        }
    }

    fn request(problem: &str, student: &str, history: &[&str], target: Target, seed: u64) -> Request {
        let mut p = Problem::scaffold(problem);
        p.entry = vec!["target_fn".into()];
        Request {
            problem: Arc::new(p),
            student: student.into(),
            history: history.iter().map(|c| Attempt { code: (*c).into(), feedback: None }).collect(),
            context: vec![],
            target,
            seed,
        }
    }

    fn fitted() -> Retrieval {
        let rows = vec![
            row("a", "p", 1, "def f(x):\n    return x"),
            row("a", "p", 2, "def f(x):\n    return x + 1"),
            row("b", "p", 1, "def f(x):\n    print(x)"),
            row("b", "p", 2, "def f(x):\n    return x+1"),
            row("b", "p", 3, "def f(x):\n    return x + 1"),
        ];
        Retrieval::fit(&rows, 1)
    }

    #[test]
    fn the_next_attempt_is_the_real_successor_of_the_nearest_state() {
        let r = fitted();
        let g = r.pick(&request("p", "new", &["def f(x):\n    return  x"], Target::Next, 1)).unwrap();
        assert_eq!((g.code.as_str(), g.submit), ("def f(x):\n    return x + 1", false));
        // The nearest state ended its stream: submit it.
        let g = r.pick(&request("p", "new", &["def f(x):\n    return x + 1 "], Target::Next, 1)).unwrap();
        assert!(g.submit, "{g:?}");
        // Never the requesting student's own code.
        let g = r.pick(&request("p", "a", &["def f(x):\n    return x"], Target::Next, 1)).unwrap();
        // b's nearest state is `return x+1` (2 edits away); what b wrote next.
        assert_eq!(g.code, "def f(x):\n    return x + 1");
    }

    #[test]
    fn many_samples_differ_by_seed_and_repeat() {
        use crate::generate::Generator;
        let r = Retrieval::fit(&fitted_rows_many(), 5);
        let request = request("p", "new", &[], Target::Stage(Stage::First), 11);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let samples = rt.block_on(r.generate_many(&request, 12)).unwrap();
        assert_eq!(samples, rt.block_on(r.generate_many(&request, 12)).unwrap());
        let distinct: std::collections::BTreeSet<&str> = samples.iter().map(|g| g.code.as_str()).collect();
        assert!(distinct.len() > 1, "{distinct:?}");
    }

    #[test]
    fn stages_draw_real_rows_at_that_stage_and_are_seeded() {
        let r = Retrieval::fit(&fitted_rows_many(), 3);
        let draw = |seed| r.pick(&request("p", "new", &[], Target::Stage(Stage::Last), seed)).unwrap().code;
        assert_eq!(draw(7), draw(7));
        let distinct: std::collections::BTreeSet<String> = (0..40).map(draw).collect();
        assert!(distinct.len() > 1 && distinct.iter().all(|c| c.ends_with("# last")), "{distinct:?}");
    }

    fn fitted_rows_many() -> Vec<Submission> {
        (0..5)
            .flat_map(|s| {
                let student = format!("s{s}");
                vec![row(&student, "p", 1, &format!("x = {s}")), row(&student, "p", 2, &format!("x = {s} # last"))]
            })
            .collect()
    }

    #[test]
    fn unseen_problems_borrow_code_and_rename_its_function() {
        let r = fitted();
        let g = r.pick(&request("q", "new", &["def g(y):\n    return y"], Target::Next, 3)).unwrap();
        assert!(g.code.starts_with("def target_fn(x):"), "{}", g.code);
        assert_eq!(
            rename_first_function("def f(n):\n    return f(n - 1) + ff(n)", "g"),
            "def g(n):\n    return g(n - 1) + ff(n)"
        );
    }
}
