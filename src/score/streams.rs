//! Stream-level realism, which none of the study's tables covers: how long streams are, how they end, how
//! labels follow each other, how the pass rate climbs, how big each edit is, and how often a student resubmits
//! the same code. Each set is taken as the streams it holds (what `rollout stream` writes); for a next-step set
//! those are its predicted rows grouped by stream.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Progress;
use super::derived::Derived;
use crate::grade::Label;
use crate::metrics::progress::normalized_steps;

/// One set's stream-level measures; the distances compare it with the real set (`None` on the real set itself).
#[derive(Debug, Serialize)]
pub struct StreamRealism {
    pub set: String,
    pub streams: usize,
    /// Attempts per stream: stream length → how many streams have it.
    pub attempts_histogram: BTreeMap<usize, usize>,
    pub attempts_median: Option<f64>,
    pub attempts_mean: Option<f64>,
    /// Two-sample Kolmogorov–Smirnov statistic (largest gap between the two empirical distribution functions)
    /// between this set's attempts per stream and the real set's.
    pub attempts_ks: Option<f64>,
    /// Share of streams whose last attempt is `no_error`.
    pub ending_no_error: Option<f64>,
    /// How often label j (columns, in [`Label::ALL`] order) follows label i (rows) within a stream.
    pub transition_counts: [[usize; 4]; 4],
    /// Each row of counts as probabilities, P(label at t+1 | label at t); `None` for a label never followed.
    pub transitions: [Option<[f64; 4]>; 4],
    /// Total variation distance (half the L1 distance) of each row to the real set's row.
    pub transition_tv: [Option<f64>; 4],
    /// Mean |difference| between this set's and the real set's mean pass rate per normalized step, over the
    /// steps both have.
    pub pass_curve_distance: Option<f64>,
    /// Edit distance to the previous attempt, per normalized step (attempts with a previous one).
    pub edit_per_step: Vec<EditQuartiles>,
    /// Share of attempts after the first whose code is exactly the attempt before it.
    pub resubmissions: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct EditQuartiles {
    pub step: usize,
    pub n: usize,
    pub p25: f64,
    pub median: f64,
    pub p75: f64,
}

/// The measures of `d`; `real` is the real set's (the same as `d` for the real set), `progress` each one's
/// curves (for the pass-rate distance).
pub(super) fn stream_realism(
    real: &Derived,
    d: &Derived,
    typical: &BTreeMap<&str, usize>,
    progress: (&Progress, &Progress),
    is_real: bool,
) -> StreamRealism {
    let lengths: Vec<f64> = d.streams.iter().map(|s| s.len() as f64).collect();
    let mut attempts_histogram = BTreeMap::new();
    for stream in &d.streams {
        *attempts_histogram.entry(stream.len()).or_insert(0) += 1;
    }
    let counts = transition_counts(d);
    let transitions = counts.map(probabilities);
    let real_transitions = if is_real { transitions } else { transition_counts(real).map(probabilities) };
    let followed: Vec<(usize, usize)> = d.streams.iter().flat_map(|s| s.windows(2).map(|p| (p[0], p[1]))).collect();
    StreamRealism {
        set: d.set.name.clone(),
        streams: d.streams.len(),
        attempts_histogram,
        attempts_median: percentile(&lengths, 0.5),
        attempts_mean: (!lengths.is_empty()).then(|| lengths.iter().sum::<f64>() / lengths.len() as f64),
        attempts_ks: (!is_real)
            .then(|| ks_statistic(&lengths, &real.streams.iter().map(|s| s.len() as f64).collect::<Vec<_>>()))
            .flatten(),
        ending_no_error: share(d.streams.iter().map(|s| d.set.labels[s[s.len() - 1]] == Label::NoError)),
        transition_counts: counts,
        transitions,
        transition_tv: std::array::from_fn(|i| {
            if is_real {
                return None;
            }
            let (p, q) = (transitions[i]?, real_transitions[i]?);
            Some(0.5 * p.iter().zip(&q).map(|(a, b)| (a - b).abs()).sum::<f64>())
        }),
        pass_curve_distance: (!is_real).then(|| curve_distance(progress.0, progress.1)).flatten(),
        edit_per_step: edit_per_step(d, typical),
        resubmissions: share(followed.iter().map(|&(a, b)| d.set.rows[a].code == d.set.rows[b].code)),
    }
}

fn transition_counts(d: &Derived) -> [[usize; 4]; 4] {
    let mut counts = [[0; 4]; 4];
    for stream in &d.streams {
        for pair in stream.windows(2) {
            counts[d.set.labels[pair[0]].index()][d.set.labels[pair[1]].index()] += 1;
        }
    }
    counts
}

fn probabilities(row: [usize; 4]) -> Option<[f64; 4]> {
    let total: usize = row.iter().sum();
    (total > 0).then(|| row.map(|c| c as f64 / total as f64))
}

pub(super) fn share(flags: impl IntoIterator<Item = bool>) -> Option<f64> {
    let (yes, n) = flags.into_iter().fold((0usize, 0usize), |(y, n), f| (y + usize::from(f), n + 1));
    (n > 0).then(|| yes as f64 / n as f64)
}

/// The `q` quantile with linear interpolation between order statistics (numpy's default).
pub(super) fn percentile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let position = q * (sorted.len() - 1) as f64;
    let (low, high) = (position.floor() as usize, position.ceil() as usize);
    Some(sorted[low] + (sorted[high] - sorted[low]) * (position - low as f64))
}

/// The largest gap between the empirical distribution functions of `a` and `b`.
fn ks_statistic(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let cdf = |sample: &[f64], x: f64| sample.iter().filter(|&&v| v <= x).count() as f64 / sample.len() as f64;
    a.iter().chain(b).map(|&x| (cdf(a, x) - cdf(b, x)).abs()).max_by(f64::total_cmp)
}

fn curve_distance(d: &Progress, real: &Progress) -> Option<f64> {
    let real_at: BTreeMap<usize, f64> = real.steps.iter().map(|p| (p.step, p.pass_rate.mean)).collect();
    let gaps: Vec<f64> =
        d.steps.iter().filter_map(|p| real_at.get(&p.step).map(|r| (p.pass_rate.mean - r).abs())).collect();
    (!gaps.is_empty()).then(|| gaps.iter().sum::<f64>() / gaps.len() as f64)
}

fn edit_per_step(d: &Derived, typical: &BTreeMap<&str, usize>) -> Vec<EditQuartiles> {
    let mut at: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for stream in &d.streams {
        let problem = d.set.rows[stream[0]].problem.as_str();
        let t = typical.get(problem).copied().unwrap_or(stream.len());
        for (&i, step) in stream.iter().zip(normalized_steps(stream.len(), t)).skip(1) {
            at.entry(step).or_default().push(d.edit[i]);
        }
    }
    at.into_iter()
        .filter_map(|(step, edits)| {
            let q = |q| percentile(&edits, q);
            Some(EditQuartiles { step, n: edits.len(), p25: q(0.25)?, median: q(0.5)?, p75: q(0.75)? })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::style::Style;
    use crate::score::{Options, ScoredSet, evaluate};
    use crate::trajectory::Submission;

    /// A set of streams of problem `p`: (student, [(code, label, pass rate)]).
    type Attempts<'a> = &'a [(&'a str, Label, f64)];

    fn set(name: &str, streams: &[(&str, Attempts)]) -> ScoredSet {
        let mut rows = vec![];
        let (mut labels, mut pass_rates) = (vec![], vec![]);
        for (student, attempts) in streams {
            for (i, &(code, label, pass_rate)) in attempts.iter().enumerate() {
                rows.push(Submission {
                    student: (*student).into(),
                    problem: "p".into(),
                    time: jiff::Timestamp::from_second(1_600_000_000 + 60 * i as i64).unwrap(),
                    attempt: i as u32 + 1,
                    code: code.into(),
                    label: Some(label),
                    pass_rate: Some(pass_rate),
                    source: name.to_owned().into(),
                    platform_correct: None,
                    generated: None,
                    extra: Default::default(),
                });
                labels.push(label);
                pass_rates.push(pass_rate);
            }
        }
        let n = rows.len();
        let styles = (0..n)
            .map(|i| Style {
                lines: 1 + i,
                chars: 5 + 3 * i,
                ast_depth: 2,
                ast_width: 1 + (i % 2) as i32,
                ast_nodes: 4 + i as i32,
                pep8: 0,
                pep8_wrapped: 0,
            })
            .collect();
        let embeddings = (0..n).map(|i| vec![1.0, i as f32]).collect();
        ScoredSet { name: name.into(), rows, labels, pass_rates, styles, embeddings }
    }

    /// Every measure of a hand-made real set and a simulated stream, against values worked out by hand.
    #[test]
    fn stream_measures_equal_hand_computed_values() {
        use Label::*;
        let real = set(
            "real",
            &[
                ("a", &[("a", Logical, 0.0), ("a", Logical, 0.5), ("ab", NoError, 1.0)]),
                ("b", &[("x", Runtime, 0.0), ("xy", NoError, 1.0)]),
            ],
        );
        let sim = set(
            "sim",
            &[("a", &[("q", Runtime, 0.0), ("q", Runtime, 0.0), ("q", Runtime, 0.0), ("qq", Runtime, 0.5)])],
        );
        let report = evaluate(&real, &[sim], &Options::default());
        let [r, s] = &report.stream_realism[..] else { panic!("two sets") };
        assert_eq!((r.streams, r.attempts_median, r.attempts_mean), (2, Some(2.5), Some(2.5)));
        assert_eq!(r.attempts_histogram, BTreeMap::from([(2, 1), (3, 1)]));
        assert_eq!(r.ending_no_error, Some(1.0));
        assert_eq!(r.transitions, [None, Some([0.5, 0.5, 0.0, 0.0]), Some([1.0, 0.0, 0.0, 0.0]), None]);
        assert_eq!(
            (r.attempts_ks, r.transition_tv, r.pass_curve_distance),
            (None, [None; 4], None),
            "no distances on the real set"
        );
        assert!((r.resubmissions.unwrap() - 1.0 / 3.0).abs() < 1e-12, "a → a of three follow-ups");
        // T = 2 (median 2.5, rounded to even): the real curve is 0 at step 1 and (0.5 + 1 + 1) / 3 at step 2.
        let step2 = r.edit_per_step.iter().find(|e| e.step == 2).unwrap();
        assert_eq!((step2.n, step2.p25, step2.median, step2.p75), (3, 0.5, 1.0, 1.0));

        assert_eq!(s.attempts_ks, Some(1.0), "every simulated stream is longer than every real one");
        assert_eq!(s.ending_no_error, Some(0.0));
        assert_eq!(s.transition_counts[2], [0, 0, 3, 0]);
        assert_eq!(
            s.transition_tv,
            [None, None, Some(1.0), None],
            "runtime always stays runtime; real runtime always passes next"
        );
        assert!((s.resubmissions.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        // Four attempts in two bins: step 1 holds pass rates 0, 0 and step 2 holds 0, 0.5.
        let want = (0.0 + (0.25f64 - 2.5 / 3.0).abs()) / 2.0;
        assert!((s.pass_curve_distance.unwrap() - want).abs() < 1e-12, "{:?} vs {want}", s.pass_curve_distance);
        let edits: Vec<(usize, usize, f64)> = s.edit_per_step.iter().map(|e| (e.step, e.n, e.median)).collect();
        assert_eq!(edits, [(1, 1, 0.0), (2, 2, 0.5)]);
    }

    #[test]
    fn percentiles_interpolate_like_numpy() {
        let v = [7.0, 1.0, 3.0, 5.0];
        assert_eq!(percentile(&v, 0.5), Some(4.0));
        assert_eq!(percentile(&v, 0.25), Some(2.5));
        assert_eq!(percentile(&v, 0.75), Some(5.5));
        assert_eq!(percentile(&[2.0], 0.25), Some(2.0));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn ks_statistic_is_the_largest_cdf_gap() {
        // F_a at 1, 2, 3: 1/2, 1, 1; F_b: 0, 1/3, 2/3 (and 1 at 4): the gap is 2/3 at x = 2.
        let d = ks_statistic(&[1.0, 2.0], &[2.0, 3.0, 4.0]).unwrap();
        assert!((d - 2.0 / 3.0).abs() < 1e-12, "{d}");
        assert_eq!(ks_statistic(&[1.0, 2.0], &[2.0, 1.0]), Some(0.0));
        assert_eq!(ks_statistic(&[], &[1.0]), None);
    }
}
