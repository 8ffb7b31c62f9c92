//! The style score (PC1 of standardized features) on real programs, against an independent computation
//! (power iteration on the correlation matrix).

use crate::common;

use studentsim::metrics::pca::{FEATURES, StyleScore};
use studentsim::metrics::{chars, lines, style};

#[test]
fn style_score_matches_power_iteration_on_real_programs() {
    let Some(programs) = common::real_programs() else { return };
    let codes: Vec<&str> = programs.iter().map(String::as_str).collect();
    let shapes = common::block_on(style::ast_shapes(&common::grader(), &codes)).unwrap();
    let rows: Vec<[f64; FEATURES]> = codes
        .iter()
        .zip(&shapes)
        .map(|(c, s)| [lines(c) as f64, chars(c) as f64, s.depth as f64, s.width as f64, s.nodes as f64])
        .collect();
    let fit = StyleScore::fit(&rows).unwrap();

    // Independent: correlation matrix by explicit sums, then power iteration.
    let n = rows.len() as f64;
    let mean: [f64; FEATURES] = std::array::from_fn(|j| rows.iter().map(|q| q[j]).sum::<f64>() / n);
    let sd: [f64; FEATURES] =
        std::array::from_fn(|j| (rows.iter().map(|q| (q[j] - mean[j]).powi(2)).sum::<f64>() / n).sqrt());
    let z: Vec<[f64; FEATURES]> = rows.iter().map(|r| std::array::from_fn(|j| (r[j] - mean[j]) / sd[j])).collect();
    let mut corr = [[0.0; FEATURES]; FEATURES];
    for a in 0..FEATURES {
        for b in 0..FEATURES {
            corr[a][b] = z.iter().map(|r| r[a] * r[b]).sum::<f64>() / n;
        }
    }
    let mut v = [1.0; FEATURES];
    for _ in 0..1000 {
        let mut next = [0.0; FEATURES];
        for a in 0..FEATURES {
            next[a] = (0..FEATURES).map(|b| corr[a][b] * v[b]).sum();
        }
        let norm = next.iter().map(|x| x * x).sum::<f64>().sqrt();
        v = next.map(|x| x / norm);
    }
    let largest = v.iter().copied().fold(0.0f64, |a, b| if b.abs() > a.abs() { b } else { a });
    if largest < 0.0 {
        v = v.map(|x| -x);
    }
    eprintln!("PC1 loadings {:?} (power iteration {v:?})", fit.loadings);
    for j in 0..FEATURES {
        assert!((fit.loadings[j] - v[j]).abs() < 1e-6, "{:?} vs {v:?}", fit.loadings);
    }
    let score_of =
        |r: &[f64; FEATURES], zr: &[f64; FEATURES]| (fit.score(r), (0..FEATURES).map(|j| zr[j] * v[j]).sum::<f64>());
    for i in [0, rows.len() / 2, rows.len() - 1] {
        let (ours, theirs) = score_of(&rows[i], &z[i]);
        assert!((ours - theirs).abs() < 1e-6);
    }
}
