//! The style score: the first principal component of standardized style features.

use nalgebra::{DMatrix, SymmetricEigen};

/// The features the score combines, in order: lines, chars, AST depth, AST width, AST nodes.
pub const FEATURES: usize = 5;

/// A fitted style score: per-feature mean and population std, and the PC1 loadings.
#[derive(Debug, Clone, PartialEq)]
pub struct StyleScore {
    pub mean: [f64; FEATURES],
    pub std: [f64; FEATURES],
    pub loadings: [f64; FEATURES],
}

impl StyleScore {
    /// Fit on the pooled rows (real and every simulated set being compared). The sign is fixed so that the
    /// loading with the largest absolute value is positive.
    pub fn fit(rows: &[[f64; FEATURES]]) -> Option<Self> {
        if rows.len() < 2 {
            return None;
        }
        let n = rows.len() as f64;
        let mut mean = [0.0; FEATURES];
        let mut std = [0.0; FEATURES];
        for j in 0..FEATURES {
            mean[j] = rows.iter().map(|r| r[j]).sum::<f64>() / n;
            std[j] = (rows.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / n).sqrt();
        }
        let z = DMatrix::from_fn(rows.len(), FEATURES, |i, j| standardize(rows[i][j], mean[j], std[j]));
        let covariance = (z.transpose() * &z) / n;
        let eigen = SymmetricEigen::new(covariance);
        let top = eigen.eigenvalues.iamax();
        let mut loadings = [0.0; FEATURES];
        for (j, l) in loadings.iter_mut().enumerate() {
            *l = eigen.eigenvectors[(j, top)];
        }
        let largest = loadings.iter().copied().fold(0.0f64, |a, b| if b.abs() > a.abs() { b } else { a });
        if largest < 0.0 {
            loadings.iter_mut().for_each(|l| *l = -*l);
        }
        Some(Self { mean, std, loadings })
    }

    pub fn score(&self, row: &[f64; FEATURES]) -> f64 {
        (0..FEATURES).map(|j| standardize(row[j], self.mean[j], self.std[j]) * self.loadings[j]).sum()
    }
}

/// z-score; a constant feature standardizes to 0.
fn standardize(x: f64, mean: f64, std: f64) -> f64 {
    if std == 0.0 { 0.0 } else { (x - mean) / std }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfectly_correlated_features_load_equally_and_positively() {
        let rows: Vec<[f64; FEATURES]> = (0..10)
            .map(|i| {
                let x = i as f64;
                [x, 2.0 * x + 1.0, -x, x, 3.0 * x]
            })
            .collect();
        let fit = StyleScore::fit(&rows).unwrap();
        let expected = 1.0 / 5f64.sqrt();
        for (j, l) in fit.loadings.iter().enumerate() {
            let want = if j == 2 { -expected } else { expected };
            assert!((l - want).abs() < 1e-9, "{:?}", fit.loadings);
        }
        assert!(fit.score(&rows[9]) > fit.score(&rows[0]));
    }

    #[test]
    fn constant_features_do_not_break_the_fit() {
        let rows: Vec<[f64; FEATURES]> = (0..4).map(|i| [i as f64, 7.0, 1.0, i as f64 * 2.0, 5.0]).collect();
        let fit = StyleScore::fit(&rows).unwrap();
        assert!(fit.loadings.iter().all(|l| l.is_finite()));
        assert!(fit.loadings[1].abs() < 1e-9, "{:?}", fit.loadings);
    }
}
