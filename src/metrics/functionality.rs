//! Functionality: the label distribution of a set of submissions, with the reference's error bars.

use crate::grade::Label;

/// The share of one label among `n` submissions, with its standard error √(p(1−p)/N).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Share {
    pub label: Label,
    pub count: usize,
    pub share: f64,
    pub error: f64,
}

/// The share of each of the four labels, in the order no_error, logical, runtime, compile.
pub fn label_distribution(labels: &[Label]) -> Vec<Share> {
    let n = labels.len();
    [Label::NoError, Label::Logical, Label::Runtime, Label::Compile]
        .into_iter()
        .map(|label| {
            let count = labels.iter().filter(|&&l| l == label).count();
            let share = if n == 0 { 0.0 } else { count as f64 / n as f64 };
            let error = if n == 0 { 0.0 } else { (share * (1.0 - share) / n as f64).sqrt() };
            Share { label, count, share, error }
        })
        .collect()
}

/// The mean of `values` and its 95% interval half-width, 1.96·std/√count (population std).
pub fn mean_with_interval(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    (mean, 1.96 * std / n.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_errors() {
        let labels = [Label::NoError, Label::Logical, Label::Logical, Label::Runtime];
        let d = label_distribution(&labels);
        assert_eq!((d[1].label, d[1].count, d[1].share), (Label::Logical, 2, 0.5));
        assert!((d[1].error - (0.25f64 / 4.0).sqrt()).abs() < 1e-12);
        assert_eq!((d[3].count, d[3].error), (0, 0.0));
        let (mean, half) = mean_with_interval(&[1.0, 3.0]);
        assert_eq!(mean, 2.0);
        assert!((half - 1.96 / 2f64.sqrt()).abs() < 1e-12);
    }
}
