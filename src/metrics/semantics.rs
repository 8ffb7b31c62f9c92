//! Semantic metrics over code embeddings (any embedder): cosine distance, average KNN distance, coverage.

/// 1 − cos(a, b); 1 when either vector is zero.
pub fn cosine_distance(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 { 1.0 } else { 1.0 - dot / (na * nb) }
}

/// For each real vector, the mean distance to its `k` nearest simulated ones (min(k, |sim|)); then the mean
/// over real vectors. Lower is better. `None` when either side is empty.
pub fn knn_distance(real: &[Vec<f32>], sim: &[Vec<f32>], k: usize) -> Option<f64> {
    if real.is_empty() || sim.is_empty() {
        return None;
    }
    let k = k.min(sim.len());
    let per_real = real.iter().map(|r| {
        let mut d: Vec<f64> = sim.iter().map(|s| cosine_distance(r, s)).collect();
        d.sort_by(f64::total_cmp);
        d[..k].iter().sum::<f64>() / k as f64
    });
    Some(per_real.sum::<f64>() / real.len() as f64)
}

/// The share of real vectors that are among the `k` nearest real ones of some simulated vector. Higher is
/// better. `None` when either side is empty.
pub fn coverage(real: &[Vec<f32>], sim: &[Vec<f32>], k: usize) -> Option<f64> {
    if real.is_empty() || sim.is_empty() {
        return None;
    }
    let mut covered = vec![false; real.len()];
    for s in sim {
        let mut d: Vec<(f64, usize)> = real.iter().enumerate().map(|(i, r)| (cosine_distance(s, r), i)).collect();
        d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for &(_, i) in d.iter().take(k) {
            covered[i] = true;
        }
    }
    Some(covered.iter().filter(|&&c| c).count() as f64 / real.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_knn_and_coverage() {
        assert!(cosine_distance(&[1.0, 0.0], &[1.0, 0.0]).abs() < 1e-12);
        assert!((cosine_distance(&[1.0, 0.0], &[0.0, 2.0]) - 1.0).abs() < 1e-12);
        assert!((cosine_distance(&[1.0, 0.0], &[-1.0, 0.0]) - 2.0).abs() < 1e-12);
        let real = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![-1.0, 0.0]];
        // A set scored against itself: zero distance with k = 1, full coverage with k >= 1.
        assert!(knn_distance(&real, &real, 1).unwrap().abs() < 1e-12);
        assert_eq!(coverage(&real, &real, 1), Some(1.0));
        let sim = vec![vec![1.0, 0.1]];
        assert!((coverage(&real, &sim, 1).unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(coverage(&real, &sim, 10), Some(1.0));
        assert_eq!(knn_distance(&real, &[], 3), None);
    }
}
