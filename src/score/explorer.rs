//! The trajectory explorer's data: every stream of every set, attempt by attempt, with the diff to the attempt
//! before (the `similar` crate), for `report.html`'s script to show side by side.

use std::collections::BTreeMap;

use serde::Serialize;
use similar::TextDiff;

use super::ScoredSet;
use crate::grade::Label;
use crate::records::FailingExample;

#[derive(Debug, Serialize)]
pub struct Explorer {
    /// Set names; the real set first.
    pub sets: Vec<String>,
    /// One entry per (problem, student) that any set has a stream for, sorted.
    pub streams: Vec<Stream>,
}

#[derive(Debug, Serialize)]
pub struct Stream {
    pub problem: String,
    pub student: String,
    /// Set index → that set's attempts, in order.
    pub by_set: BTreeMap<usize, Vec<Attempt>>,
}

#[derive(Debug, Serialize)]
pub struct Attempt {
    pub attempt: u32,
    pub label: Label,
    pub pass_rate: f64,
    pub code: String,
    /// Unified diff from the attempt before in this set's stream; absent for the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// What a simulated student was shown after this attempt (a rollout's feedback), when recorded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failing: Vec<FailingExample>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Explorer {
    pub fn new(real: &ScoredSet, sims: &[ScoredSet]) -> Self {
        let sets: Vec<&ScoredSet> = std::iter::once(real).chain(sims).collect();
        let mut streams: BTreeMap<(String, String), BTreeMap<usize, Vec<Attempt>>> = BTreeMap::new();
        for (s, set) in sets.iter().enumerate() {
            for ((student, problem), rows) in crate::trajectory::streams(&set.rows) {
                let mut attempts: Vec<Attempt> = Vec::with_capacity(rows.len());
                let mut previous: Option<&str> = None;
                for &i in &rows {
                    let row = &set.rows[i];
                    let feedback = row.generated.as_ref().and_then(|g| g.feedback.as_ref());
                    attempts.push(Attempt {
                        attempt: row.attempt,
                        label: set.labels[i],
                        pass_rate: set.pass_rates[i],
                        code: row.code.clone(),
                        diff: previous.map(|before| {
                            TextDiff::from_lines(before, &row.code).unified_diff().context_radius(2).to_string()
                        }),
                        failing: feedback.map(|f| f.failing.clone()).unwrap_or_default(),
                        message: feedback.and_then(|f| f.message.clone()),
                        hint: feedback.and_then(|f| f.hint.clone()),
                    });
                    previous = Some(&row.code);
                }
                streams.entry((problem.to_owned(), student.to_owned())).or_default().insert(s, attempts);
            }
        }
        Self {
            sets: sets.iter().map(|s| s.name.clone()).collect(),
            streams: streams
                .into_iter()
                .map(|((problem, student), by_set)| Stream { problem, student, by_set })
                .collect(),
        }
    }

    /// The data as JSON that is safe inside an HTML `<script>` element: every `<` is escaped (`\u003c`), so no
    /// code in it can close the element (`</script>`) or open a comment, whatever a submission holds.
    pub fn script_json(&self) -> serde_json::Result<String> {
        Ok(serde_json::to_string(self)?.replace('<', "\\u003c"))
    }
}
