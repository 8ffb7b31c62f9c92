//! Grading the edit model's candidate attempts, so it can pick one with the outcome it drew.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};

use crate::grade::{Grader, Label, Tests};
use crate::problems::Problem;

/// A grader with each problem's parsed tests kept. Give it a grader of its own: a rollout's grader has one
/// sandbox slot per job, and the edit model grades while the rollout does.
pub struct Judge {
    grader: Arc<Grader>,
    tests: Mutex<HashMap<String, Arc<Tests>>>,
}

impl Judge {
    pub fn new(grader: Arc<Grader>) -> Self {
        Self { grader, tests: Mutex::new(HashMap::new()) }
    }

    pub async fn label(&self, problem: &Problem, code: &str) -> Result<Label> {
        let known = self.tests.lock().expect("no panic while holding the lock").get(&problem.id).cloned();
        let tests = match known {
            Some(tests) => tests,
            None => {
                let tests = Arc::new(self.grader.problem_tests(problem).await.with_context(|| format!("reading the tests of {}", problem.id))?);
                self.tests.lock().expect("no panic while holding the lock").insert(problem.id.clone(), Arc::clone(&tests));
                tests
            }
        };
        Ok(self.grader.grade(&problem.fixed, code, &tests).await.label)
    }
}
