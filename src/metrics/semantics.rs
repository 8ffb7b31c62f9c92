//! Semantic metrics over code embeddings (any embedder): cosine distance, average KNN distance, coverage.
//!
//! KNN distance and coverage work on one distance matrix (a matrix product of the L2-normalized vectors).
//! Neighbour sets include ties: every vector as close as the k-th nearest counts as a neighbour. Real logs hold
//! many identical programs (the untouched stub, a popular solution), and without this rule which of several
//! identical programs is "among the 10 nearest" would depend on row order.

use nalgebra::DMatrix;

/// Distances this close are the same distance (f32 products of identical vectors differ in the last bits).
const TIE: f64 = 1e-6;

/// 1 − cos(a, b), at least 0 (rounding can take identical vectors a hair below); 1 when either vector is zero.
pub fn cosine_distance(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 { 1.0 } else { (1.0 - dot / (na * nb)).max(0.0) }
}

/// Cosine distances: entry (i, j) is the distance between `rows[i]` and `cols[j]`.
pub fn distance_matrix(rows: &[Vec<f32>], cols: &[Vec<f32>]) -> DMatrix<f32> {
    let normalized = |vs: &[Vec<f32>]| {
        let dim = vs.first().map_or(0, Vec::len);
        DMatrix::from_fn(dim, vs.len(), |d, i| {
            let norm = vs[i].iter().map(|x| x * x).sum::<f32>().sqrt();
            if norm == 0.0 { 0.0 } else { vs[i][d] / norm }
        })
    };
    let cosines = normalized(rows).transpose() * normalized(cols);
    cosines.map(|c| 1.0 - c)
}

/// The `k` smallest values of `distances` (or all of them), ascending.
fn smallest(mut distances: Vec<f32>, k: usize) -> Vec<f32> {
    let k = k.min(distances.len());
    if k < distances.len() {
        distances.select_nth_unstable_by(k - 1, f32::total_cmp);
        distances.truncate(k);
    }
    distances.sort_by(f32::total_cmp);
    distances
}

/// For each real vector, the mean distance to its `k` nearest simulated ones (min(k, |sim|)); then the mean
/// over real vectors. Lower is better. `None` when either side is empty or `k` is 0.
pub fn knn_distance(real: &[Vec<f32>], sim: &[Vec<f32>], k: usize) -> Option<f64> {
    if real.is_empty() || sim.is_empty() || k == 0 {
        return None;
    }
    let d = distance_matrix(real, sim);
    let per_real = d.row_iter().map(|row| {
        let nearest = smallest(row.iter().copied().collect(), k);
        nearest.iter().map(|&x| f64::from(x)).sum::<f64>() / nearest.len() as f64
    });
    Some(per_real.sum::<f64>() / real.len() as f64)
}

/// The share of real vectors that are among the `k` nearest real ones of some simulated vector (ties at the
/// k-th distance included). Higher is better. `None` when either side is empty or `k` is 0.
pub fn coverage(real: &[Vec<f32>], sim: &[Vec<f32>], k: usize) -> Option<f64> {
    if real.is_empty() || sim.is_empty() || k == 0 {
        return None;
    }
    let d = distance_matrix(sim, real);
    let mut covered = vec![false; real.len()];
    for row in d.row_iter() {
        let kth = f64::from(*smallest(row.iter().copied().collect(), k).last().expect("k >= 1"));
        for (j, &x) in row.iter().enumerate() {
            if f64::from(x) <= kth + TIE {
                covered[j] = true;
            }
        }
    }
    Some(covered.iter().filter(|&&c| c).count() as f64 / real.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng, rngs::StdRng};

    /// The definitions written out naively, in f64, one pair at a time.
    fn brute_knn(real: &[Vec<f32>], sim: &[Vec<f32>], k: usize) -> f64 {
        let per_real = real.iter().map(|r| {
            let mut d: Vec<f64> = sim.iter().map(|s| cosine_distance(r, s)).collect();
            d.sort_by(f64::total_cmp);
            let k = k.min(d.len());
            d[..k].iter().sum::<f64>() / k as f64
        });
        per_real.sum::<f64>() / real.len() as f64
    }

    fn brute_coverage(real: &[Vec<f32>], sim: &[Vec<f32>], k: usize) -> f64 {
        let mut covered = vec![false; real.len()];
        for s in sim {
            let mut d: Vec<(f64, usize)> = real.iter().enumerate().map(|(i, r)| (cosine_distance(s, r), i)).collect();
            d.sort_by(|a, b| a.0.total_cmp(&b.0));
            let kth = d[k.min(d.len()) - 1].0;
            d.iter().filter(|(x, _)| *x <= kth + TIE).for_each(|&(_, i)| covered[i] = true);
        }
        covered.iter().filter(|&&c| c).count() as f64 / real.len() as f64
    }

    fn random_set(rng: &mut StdRng, n: usize, dim: usize) -> Vec<Vec<f32>> {
        (0..n).map(|_| (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect()).collect()
    }

    #[test]
    fn knn_and_coverage_equal_brute_force() {
        let mut rng = StdRng::seed_from_u64(7);
        for (n_real, n_sim, dim) in [(50, 40, 16), (7, 3, 5), (120, 200, 32), (1, 1, 4)] {
            let real = random_set(&mut rng, n_real, dim);
            let sim = random_set(&mut rng, n_sim, dim);
            for k in [1, 3, 10] {
                let knn = knn_distance(&real, &sim, k).unwrap();
                assert!((knn - brute_knn(&real, &sim, k)).abs() < 1e-5, "knn {n_real}x{n_sim} k={k}");
                assert_eq!(
                    coverage(&real, &sim, k).unwrap(),
                    brute_coverage(&real, &sim, k),
                    "coverage {n_real}x{n_sim} k={k}"
                );
            }
        }
    }

    #[test]
    fn a_set_against_itself_has_full_coverage_even_with_duplicates() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut real = random_set(&mut rng, 30, 8);
        let stub = real[0].clone();
        real.extend(std::iter::repeat_n(stub, 15)); // 16 identical programs, more than k = 10
        assert_eq!(coverage(&real, &real, 10), Some(1.0));
        assert!(knn_distance(&real, &real, 1).unwrap().abs() < 1e-6);
    }

    #[test]
    fn distances_and_edge_cases() {
        assert!(cosine_distance(&[1.0, 0.0], &[1.0, 0.0]).abs() < 1e-12);
        assert!((cosine_distance(&[1.0, 0.0], &[0.0, 2.0]) - 1.0).abs() < 1e-12);
        assert!((cosine_distance(&[1.0, 0.0], &[-1.0, 0.0]) - 2.0).abs() < 1e-12);
        let real = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![-1.0, 0.0]];
        let sim = vec![vec![1.0, 0.1]];
        assert!((coverage(&real, &sim, 1).unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(coverage(&real, &sim, 10), Some(1.0));
        assert_eq!(knn_distance(&real, &[], 3), None);
        assert_eq!(coverage(&[], &sim, 3), None);
    }
}
