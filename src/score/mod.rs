//! Scoring simulated submissions against real ones on the reference study's four dimensions, and the report.
//!
//! [`evaluate`] is a pure function of sets whose rows already carry their grade, style features and embedding
//! ([`ScoredSet`]); the CLI gathers those (grading in the sandbox, embedding with the cache) and writes what
//! [`report::markdown`] and [`plots`] make of the result.
//!
//! Views and pairing, the same for every set (the real one included, so a set scored against itself gives zero
//! error):
//! - **Stages** (Tables 1 and 2, error-type bars): the first, middle and last row of each stream of the set.
//!   A simulated stage row is paired with the real stage row of the same (student, problem).
//! - **Next steps** (Table 3): real rows that have a predecessor in their stream; a simulated row is paired with
//!   the real row of the same (student, problem, attempt).
//! - **Progress**: every row at its normalized step, with `T` from the real streams of its problem; edit distance
//!   to the previous row of the same stream of the same set.

mod derived;
pub mod explorer;
pub mod html;
pub mod leaderboard;
pub mod plots;
pub mod raster;
pub mod report;
mod streams;
pub mod table_view;
mod tables;
pub mod tutor;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use streams::{EditQuartiles, StreamRealism};
pub use tables::{MeanCi, MeanStd, NextStepRow, ProgressPoint, StageRow, StyleRow, evaluate};

use crate::grade::Label;
use crate::metrics::functionality::Share;
use crate::metrics::style::Style;
use crate::trajectory::Submission;
use crate::trajectory::views::Stage;

/// One set of submissions (the real one or one generator's) with everything scoring needs per row.
pub struct ScoredSet {
    pub name: String,
    pub rows: Vec<Submission>,
    /// One per row.
    pub labels: Vec<Label>,
    pub pass_rates: Vec<f64>,
    pub styles: Vec<Style>,
    pub embeddings: Vec<Vec<f32>>,
}

/// Which PEP 8 count the tables use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pep8Count {
    /// pycodestyle on the code exactly as submitted.
    #[default]
    Plain,
    /// The reference study's wrapped count.
    Wrapped,
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub pep8: Pep8Count,
    /// Neighbours per real row for the KNN distance (the study: 3).
    pub knn_k: usize,
    /// Neighbours per simulated row for coverage (the study: 10).
    pub coverage_k: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self { pep8: Pep8Count::default(), knn_k: 3, coverage_k: 10 }
    }
}

/// Everything `score` computes; written as `metrics.json`.
/// A set's sampled points in the embedding PCA plane: its first, middle and last stage rows.
pub type StagePoints = [Vec<(f64, f64)>; 3];

#[derive(Debug, Serialize)]
pub struct Report {
    pub pep8: Pep8Count,
    pub knn_k: usize,
    pub coverage_k: usize,
    pub sets: Vec<SetSummary>,
    /// The style score fitted on the pooled rows of every set.
    pub style_score: StyleFit,
    /// Label shares per stage, per set (the error-type bars).
    pub functionality: Vec<Functionality>,
    /// Per simulated set: KNN distance and coverage per stage, averaged over problems.
    pub table1: Vec<Table1>,
    /// Last stage: PEP 8 and style score, per set.
    pub table2: Vec<StyleRow>,
    /// Next steps: pass rate, PEP 8, style score and cosine distance, per set.
    pub table3: Vec<NextStepRow>,
    /// Per set: pass rate, style score and edit distance per normalized step.
    pub progress: Vec<Progress>,
    /// Per set: attempts per stream, endings, label transitions, pass-rate curve distance, edits per step,
    /// resubmissions ([`streams`]).
    pub stream_realism: Vec<StreamRealism>,
    /// Share of embedding variance on the first two principal components.
    pub embedding_pca_explained: [f64; 2],
    /// Points of the embedding PCA figure: each set's stage rows (first, middle, last), sampled; not written to
    /// metrics.json.
    #[serde(skip)]
    pub embedding_points: Vec<(String, StagePoints)>,
}

#[derive(Debug, Serialize)]
pub struct SetSummary {
    pub name: String,
    pub rows: usize,
    pub streams: usize,
    pub problems: usize,
}

#[derive(Debug, Serialize)]
pub struct StyleFit {
    pub features: [&'static str; 5],
    pub mean: [f64; 5],
    pub std: [f64; 5],
    pub loadings: [f64; 5],
}

#[derive(Debug, Serialize)]
pub struct Functionality {
    pub set: String,
    pub stages: Vec<StageShares>,
}

#[derive(Debug, Serialize)]
pub struct StageShares {
    pub stage: Stage,
    pub n: usize,
    pub shares: Vec<Share>,
}

#[derive(Debug, Serialize)]
pub struct Table1 {
    pub set: String,
    pub stages: Vec<StageRow>,
}

#[derive(Debug, Serialize)]
pub struct Progress {
    pub set: String,
    pub steps: Vec<ProgressPoint>,
}

/// The stage rows of each stream of `rows`: (student, problem) → [first, middle, last].
fn stage_rows(rows: &[Submission]) -> BTreeMap<(&str, &str), [usize; 3]> {
    crate::trajectory::streams(rows)
        .into_iter()
        .map(|(key, stream)| (key, Stage::ALL.map(|s| stream[s.position(stream.len())])))
        .collect()
}
