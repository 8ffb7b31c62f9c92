//! Per-row values every table of a report uses, computed once per set: the style score, PEP 8 counts, stages,
//! streams and edit distances.

use std::collections::BTreeMap;

use super::{Pep8Count, ScoredSet, stage_rows};
use crate::metrics::edit_distance;
use crate::metrics::pca::{FEATURES, StyleScore};
use crate::metrics::style::Style;
use crate::trajectory::streams;

/// Per-row values every table uses, for one set.
pub(super) struct Derived<'a> {
    pub(super) set: &'a ScoredSet,
    pub(super) style: Vec<f64>,
    pub(super) pep8: Vec<f64>,
    pub(super) pep8_other: Vec<f64>,
    pub(super) stages: BTreeMap<(&'a str, &'a str), [usize; 3]>,
    /// Each row's stream, in order.
    pub(super) streams: Vec<Vec<usize>>,
    /// Edit distance to the previous row of the same stream of this set (0 for the first).
    pub(super) edit: Vec<f64>,
}

impl<'a> Derived<'a> {
    pub(super) fn new(set: &'a ScoredSet, fit: &StyleScore, pep8: Pep8Count) -> Self {
        let streams: Vec<Vec<usize>> = streams(&set.rows).into_values().collect();
        let mut edit = vec![0.0; set.rows.len()];
        for stream in &streams {
            for pair in stream.windows(2) {
                edit[pair[1]] = edit_distance(&set.rows[pair[0]].code, &set.rows[pair[1]].code) as f64;
            }
        }
        Self {
            set,
            style: set.styles.iter().map(|s| fit.score(&features(s))).collect(),
            pep8: set
                .styles
                .iter()
                .map(|s| f64::from(if pep8 == Pep8Count::Plain { s.pep8 } else { s.pep8_wrapped }))
                .collect(),
            pep8_other: set
                .styles
                .iter()
                .map(|s| f64::from(if pep8 == Pep8Count::Plain { s.pep8_wrapped } else { s.pep8 }))
                .collect(),
            stages: stage_rows(&set.rows),
            streams,
            edit,
        }
    }

    pub(super) fn key(&self, i: usize) -> (&'a str, &'a str) {
        (self.set.rows[i].student.as_str(), self.set.rows[i].problem.as_str())
    }
}

pub(super) fn features(s: &Style) -> [f64; FEATURES] {
    [s.lines as f64, s.chars as f64, f64::from(s.ast_depth), f64::from(s.ast_width), f64::from(s.ast_nodes)]
}

pub(super) fn mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.into_iter().fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}
