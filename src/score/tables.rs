//! The numbers of the report: one function per table, all driven by [`evaluate`].

use std::collections::{BTreeMap, HashMap};

use nalgebra::{DMatrix, SymmetricEigen};
use serde::Serialize;

use super::derived::{Derived, features, mean};
use super::streams::stream_realism;
use super::{
    Functionality, Options, Progress, Report, ScoredSet, SetSummary, StagePoints, StageShares, StyleFit, Table1,
    stage_rows,
};
use crate::grade::Label;
use crate::metrics::edit_distance;
use crate::metrics::functionality::{label_distribution, mean_with_interval};
use crate::metrics::pca::{FEATURES, StyleScore};
use crate::metrics::progress::{normalized_steps, typical_length};
use crate::metrics::semantics::{cosine_distance, coverage, knn_distance};
use crate::trajectory::views::Stage;

/// Mean and population standard deviation; `None` for no values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MeanStd {
    pub mean: f64,
    pub std: f64,
}

impl MeanStd {
    fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        Some(Self { mean, std: (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt() })
    }
}

/// Mean and 95% interval half-width (1.96·std/√n).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MeanCi {
    pub mean: f64,
    pub ci95: f64,
}

/// Table 1, one stage of one simulated set.
#[derive(Debug, Serialize)]
pub struct StageRow {
    pub stage: Stage,
    /// Mean over problems of the average KNN distance (real → simulated).
    pub knn_distance: Option<f64>,
    /// Mean over problems of the coverage (simulated → real).
    pub coverage: Option<f64>,
    /// Problems with rows on both sides at this stage.
    pub problems: usize,
}

/// Table 2, one set: last-stage PEP 8 and style score, and the mean absolute error against the paired real row.
#[derive(Debug, Serialize)]
pub struct StyleRow {
    pub set: String,
    pub n: usize,
    pub pep8: Option<MeanStd>,
    pub style: Option<MeanStd>,
    /// Rows paired with a real row (same student and problem); the MAE columns average over them.
    pub pairs: usize,
    pub pep8_mae: Option<f64>,
    pub style_mae: Option<f64>,
    /// The other PEP 8 count (the study's wrapped one when the tables use the plain one, and the other way).
    pub pep8_other: Option<MeanStd>,
    pub pep8_other_mae: Option<f64>,
}

/// Table 3, one set: next-step rows.
#[derive(Debug, Serialize)]
pub struct NextStepRow {
    pub set: String,
    /// Rows paired with a real next-step target (same student, problem and attempt).
    pub n: usize,
    pub pass_rate: Option<MeanStd>,
    pub pass_rate_mae: Option<f64>,
    /// Share of rows labelled no_error.
    pub no_error: Option<f64>,
    pub pep8: Option<MeanStd>,
    pub pep8_mae: Option<f64>,
    /// The other PEP 8 count, as in [`StyleRow`].
    pub pep8_other: Option<MeanStd>,
    pub pep8_other_mae: Option<f64>,
    pub style: Option<MeanStd>,
    pub style_mae: Option<f64>,
    /// Edit distance to the previous row of the same stream (for a simulated set, its own previous row).
    pub edit_distance: Option<MeanStd>,
    pub edit_distance_mae: Option<f64>,
    /// Edit distance from the real attempt before the target (what the generator was shown last) to this
    /// row: the size of the step it took. For the real set the same as `edit_distance`.
    pub step_edit: Option<MeanStd>,
    pub step_edit_median: Option<f64>,
    /// Share of rows identical to the real attempt before the target.
    pub unchanged: Option<f64>,
    /// Mean cosine distance between each row's embedding and its real partner's.
    pub cosine: Option<f64>,
}

/// One normalized step of one set's progress curves.
#[derive(Debug, Serialize)]
pub struct ProgressPoint {
    pub step: usize,
    pub n: usize,
    pub pass_rate: MeanCi,
    pub style: MeanCi,
    pub edit_distance: MeanCi,
}

/// Score `sims` against `real`. Every set has at least one row.
pub fn evaluate(real: &ScoredSet, sims: &[ScoredSet], options: &Options) -> Report {
    let all: Vec<&ScoredSet> = std::iter::once(real).chain(sims).collect();
    let pooled: Vec<[f64; FEATURES]> = all.iter().flat_map(|set| set.styles.iter().map(features)).collect();
    // One row in all: every feature is constant, so every score is 0.
    let fit = StyleScore::fit(&pooled).unwrap_or(StyleScore {
        mean: pooled[0],
        std: [0.0; FEATURES],
        loadings: [0.0; FEATURES],
    });
    let derived: Vec<Derived> = all.iter().map(|set| Derived::new(set, &fit, options.pep8)).collect();
    let real_d = &derived[0];
    let (targets, typical) = (next_step_targets(real_d), typical_lengths(real_d));

    let (embedding_pca_explained, embedding_points) = embedding_pca(&all);
    let progress: Vec<Progress> = derived.iter().map(|d| progress(&typical, d)).collect();
    let stream_realism = derived
        .iter()
        .zip(&progress)
        .enumerate()
        .map(|(i, (d, curve))| stream_realism(real_d, d, &typical, (curve, &progress[0]), i == 0))
        .collect();
    Report {
        pep8: options.pep8,
        knn_k: options.knn_k,
        coverage_k: options.coverage_k,
        sets: derived.iter().map(summary).collect(),
        style_score: StyleFit {
            features: ["lines", "chars", "ast_depth", "ast_width", "ast_nodes"],
            mean: fit.mean,
            std: fit.std,
            loadings: fit.loadings,
        },
        functionality: derived.iter().map(functionality).collect(),
        table1: derived[1..].iter().map(|sim| table1(real_d, sim, options)).collect(),
        table2: derived.iter().enumerate().map(|(i, d)| table2(real_d, d, i == 0)).collect(),
        table3: derived.iter().enumerate().map(|(i, d)| table3(real_d, &targets, d, i == 0)).collect(),
        progress,
        stream_realism,
        embedding_pca_explained,
        embedding_points,
    }
}

fn summary(d: &Derived) -> SetSummary {
    let mut problems: Vec<&str> = d.set.rows.iter().map(|r| r.problem.as_str()).collect();
    problems.sort_unstable();
    problems.dedup();
    SetSummary { name: d.set.name.clone(), rows: d.set.rows.len(), streams: d.streams.len(), problems: problems.len() }
}

fn functionality(d: &Derived) -> Functionality {
    let stages = Stage::ALL
        .iter()
        .enumerate()
        .map(|(s, &stage)| {
            let labels: Vec<Label> = d.stages.values().map(|rows| d.set.labels[rows[s]]).collect();
            StageShares { stage, n: labels.len(), shares: label_distribution(&labels) }
        })
        .collect();
    Functionality { set: d.set.name.clone(), stages }
}

fn table1(real: &Derived, sim: &Derived, options: &Options) -> Table1 {
    let stages = Stage::ALL
        .iter()
        .enumerate()
        .map(|(s, &stage)| {
            let (real_groups, sim_groups) = (by_problem(real, s), by_problem(sim, s));
            let shared: Vec<&str> = sim_groups.keys().filter(|p| real_groups.contains_key(*p)).copied().collect();
            let per_problem = |metric: GroupMetric, k: usize| {
                mean(shared.iter().filter_map(|p| metric(&real_groups[p], &sim_groups[p], k)))
            };
            StageRow {
                stage,
                knn_distance: per_problem(knn_distance, options.knn_k),
                coverage: per_problem(coverage, options.coverage_k),
                problems: shared.len(),
            }
        })
        .collect();
    Table1 { set: sim.set.name.clone(), stages }
}

/// The embeddings of the rows of `d` at stage `s`, by problem.
fn by_problem<'a>(d: &Derived<'a>, s: usize) -> BTreeMap<&'a str, Vec<Vec<f32>>> {
    let mut groups: BTreeMap<&str, Vec<Vec<f32>>> = BTreeMap::new();
    for (&(_, problem), rows) in &d.stages {
        groups.entry(problem).or_default().push(d.set.embeddings[rows[s]].clone());
    }
    groups
}

fn table2(real: &Derived, d: &Derived, is_real: bool) -> StyleRow {
    const LAST: usize = 2;
    let last: Vec<usize> = d.stages.values().map(|rows| rows[LAST]).collect();
    let pairs: Vec<(usize, usize)> =
        last.iter().filter_map(|&i| real.stages.get(&d.key(i)).map(|rows| (i, rows[LAST]))).collect();
    let mae = |values: &[f64], real_values: &[f64]| {
        if is_real { None } else { mean(pairs.iter().map(|&(i, r)| (values[i] - real_values[r]).abs())) }
    };
    StyleRow {
        set: d.set.name.clone(),
        n: last.len(),
        pep8: MeanStd::of(&last.iter().map(|&i| d.pep8[i]).collect::<Vec<_>>()),
        style: MeanStd::of(&last.iter().map(|&i| d.style[i]).collect::<Vec<_>>()),
        pairs: if is_real { 0 } else { pairs.len() },
        pep8_mae: mae(&d.pep8, &real.pep8),
        style_mae: mae(&d.style, &real.style),
        pep8_other: MeanStd::of(&last.iter().map(|&i| d.pep8_other[i]).collect::<Vec<_>>()),
        pep8_other_mae: mae(&d.pep8_other, &real.pep8_other),
    }
}

/// The real rows that have a predecessor.
struct Targets<'a> {
    /// By (student, problem, attempt).
    by_key: HashMap<(&'a str, &'a str, u32), usize>,
    /// Each target's predecessor in its stream.
    previous: HashMap<usize, usize>,
}

fn next_step_targets<'a>(real: &Derived<'a>) -> Targets<'a> {
    let previous: HashMap<usize, usize> =
        real.streams.iter().flat_map(|stream| stream.windows(2).map(|w| (w[1], w[0]))).collect();
    let by_key = previous
        .keys()
        .map(|&i| {
            let r = &real.set.rows[i];
            ((r.student.as_str(), r.problem.as_str(), r.attempt), i)
        })
        .collect();
    Targets { by_key, previous }
}

fn table3(real: &Derived, targets: &Targets, d: &Derived, is_real: bool) -> NextStepRow {
    let Targets { by_key: targets, previous } = targets;
    let pairs: Vec<(usize, usize)> = (0..d.set.rows.len())
        .filter_map(|i| {
            let r = &d.set.rows[i];
            targets.get(&(r.student.as_str(), r.problem.as_str(), r.attempt)).map(|&t| (i, t))
        })
        .collect();
    let values = |v: &[f64]| pairs.iter().map(|&(i, _)| v[i]).collect::<Vec<_>>();
    let mae = |v: &[f64], real_v: &[f64]| {
        if is_real { None } else { mean(pairs.iter().map(|&(i, t)| (v[i] - real_v[t]).abs())) }
    };
    let steps: Vec<f64> = pairs
        .iter()
        .map(|&(i, t)| edit_distance(&real.set.rows[previous[&t]].code, &d.set.rows[i].code) as f64)
        .collect();
    NextStepRow {
        set: d.set.name.clone(),
        n: pairs.len(),
        pass_rate: MeanStd::of(&values(&d.set.pass_rates)),
        pass_rate_mae: mae(&d.set.pass_rates, &real.set.pass_rates),
        no_error: mean(pairs.iter().map(|&(i, _)| if d.set.labels[i] == Label::NoError { 1.0 } else { 0.0 })),
        pep8: MeanStd::of(&values(&d.pep8)),
        pep8_mae: mae(&d.pep8, &real.pep8),
        pep8_other: MeanStd::of(&values(&d.pep8_other)),
        pep8_other_mae: mae(&d.pep8_other, &real.pep8_other),
        style: MeanStd::of(&values(&d.style)),
        style_mae: mae(&d.style, &real.style),
        edit_distance: MeanStd::of(&values(&d.edit)),
        edit_distance_mae: mae(&d.edit, &real.edit),
        step_edit: MeanStd::of(&steps),
        step_edit_median: super::streams::percentile(&steps, 0.5),
        unchanged: super::streams::share(steps.iter().map(|&e| e == 0.0)),
        cosine: if is_real {
            None
        } else {
            mean(pairs.iter().map(|&(i, t)| cosine_distance(&d.set.embeddings[i], &real.set.embeddings[t])))
        },
    }
}

/// `T` of each problem: the typical length of its real streams.
fn typical_lengths<'a>(real: &Derived<'a>) -> BTreeMap<&'a str, usize> {
    let mut lengths: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for stream in &real.streams {
        lengths.entry(real.set.rows[stream[0]].problem.as_str()).or_default().push(stream.len());
    }
    lengths.into_iter().map(|(p, l)| (p, typical_length(&l))).collect()
}

fn progress(typical: &BTreeMap<&str, usize>, d: &Derived) -> Progress {
    // step -> (pass rates, style scores, edit distances)
    let mut at: BTreeMap<usize, [Vec<f64>; 3]> = BTreeMap::new();
    for stream in &d.streams {
        let problem = d.set.rows[stream[0]].problem.as_str();
        let t = typical.get(problem).copied().unwrap_or(stream.len());
        for (&i, step) in stream.iter().zip(normalized_steps(stream.len(), t)) {
            let values = at.entry(step).or_default();
            values[0].push(d.set.pass_rates[i]);
            values[1].push(d.style[i]);
            values[2].push(d.edit[i]);
        }
    }
    let ci = |v: &[f64]| {
        let (mean, ci95) = mean_with_interval(v);
        MeanCi { mean, ci95 }
    };
    let steps = at
        .into_iter()
        .map(|(step, [pass, style, edit])| ProgressPoint {
            step,
            n: pass.len(),
            pass_rate: ci(&pass),
            style: ci(&style),
            edit_distance: ci(&edit),
        })
        .collect();
    Progress { set: d.set.name.clone(), steps }
}

/// A measure between two groups of embeddings with a parameter k (as `coverage` and `knn_distance` take).
type GroupMetric = fn(&[Vec<f32>], &[Vec<f32>], usize) -> Option<f64>;

/// The first two principal components of the pooled embeddings: their share of the variance, and the
/// projection of each set's stage rows (first, middle, last of every stream; up to 1,000 per stage, every k-th).
fn embedding_pca(all: &[&ScoredSet]) -> ([f64; 2], Vec<(String, StagePoints)>) {
    let vectors: Vec<&Vec<f32>> = all.iter().flat_map(|s| s.embeddings.iter()).collect();
    let dim = vectors.first().map_or(0, |v| v.len());
    if vectors.len() < 2 || dim < 2 {
        return ([0.0; 2], Vec::new());
    }
    let n = vectors.len() as f64;
    let mean: Vec<f64> = (0..dim).map(|j| vectors.iter().map(|v| f64::from(v[j])).sum::<f64>() / n).collect();
    let centred = DMatrix::from_fn(vectors.len(), dim, |i, j| f64::from(vectors[i][j]) - mean[j]);
    let eigen = SymmetricEigen::new(centred.transpose() * &centred / n);
    let mut order: Vec<usize> = (0..dim).collect();
    order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
    let total: f64 = eigen.eigenvalues.iter().map(|v| v.max(0.0)).sum();
    let explained = [0, 1].map(|c| if total > 0.0 { eigen.eigenvalues[order[c]].max(0.0) / total } else { 0.0 });
    let project = |v: &[f32], c: usize| {
        (0..dim).map(|j| (f64::from(v[j]) - mean[j]) * eigen.eigenvectors[(j, order[c])]).sum::<f64>()
    };
    let points = all
        .iter()
        .map(|set| {
            let stages: Vec<[usize; 3]> = stage_rows(&set.rows).into_values().collect();
            let every = stages.len().div_ceil(1000).max(1);
            let pts = [0, 1, 2].map(|stage| {
                stages
                    .iter()
                    .step_by(every)
                    .map(|rows| &set.embeddings[rows[stage]])
                    .map(|v| (project(v, 0), project(v, 1)))
                    .collect()
            });
            (set.name.clone(), pts)
        })
        .collect();
    (explained, points)
}
