//! Normalized steps (reference study, Experiment 2): streams of different lengths mapped onto 1..=T.

/// `T` for a set of streams: the median stream length, rounded half to even (numpy's `round(median(...))`).
pub fn typical_length(lengths: &[usize]) -> usize {
    assert!(!lengths.is_empty(), "no streams");
    let mut sorted = lengths.to_vec();
    sorted.sort_unstable();
    let mid = sorted.len() / 2;
    let median = if sorted.len() % 2 == 1 { sorted[mid] as f64 } else { (sorted[mid - 1] + sorted[mid]) as f64 / 2.0 };
    median.round_ties_even() as usize
}

/// The normalized step (1-based) of each of the `n` rows of one stream, given `t`.
pub fn normalized_steps(n: usize, t: usize) -> Vec<usize> {
    match n {
        0 => Vec::new(),
        1 => vec![1],
        _ if n == t => (1..=t).collect(),
        _ if n < t => linspace(1.0, t as f64, n).into_iter().map(|x| x.round_ties_even() as usize).collect(),
        _ => {
            let edges: Vec<usize> = linspace(0.0, n as f64, t + 1).into_iter().map(|x| x.trunc() as usize).collect();
            let mut steps = vec![0; n];
            for (bin, pair) in edges.windows(2).enumerate() {
                steps[pair[0]..pair[1]].fill(bin + 1);
            }
            steps
        }
    }
}

/// numpy's `linspace(start, stop, num)`: `start + i * step`, with the last value exactly `stop`.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let step = (stop - start) / (num - 1) as f64;
    let mut values: Vec<f64> = (0..num).map(|i| start + i as f64 * step).collect();
    values[num - 1] = stop;
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_examples_from_the_reference() {
        assert_eq!(normalized_steps(3, 4), [1, 2, 4]);
        assert_eq!(normalized_steps(7, 3), [1, 1, 2, 2, 3, 3, 3]); // edges [0, 2, 4, 7]
        assert_eq!(normalized_steps(1, 5), [1]);
        assert_eq!(normalized_steps(4, 4), [1, 2, 3, 4]);
        assert_eq!(normalized_steps(2, 3), [1, 3]);
    }

    #[test]
    fn typical_length_rounds_half_to_even() {
        assert_eq!(typical_length(&[1, 2, 3]), 2);
        assert_eq!(typical_length(&[2, 3]), 2); // 2.5 -> 2
        assert_eq!(typical_length(&[3, 4]), 4); // 3.5 -> 4
        assert_eq!(typical_length(&[5, 1, 9, 3]), 4);
    }
}
