//! Seeded samples of whole streams, for generators too slow to run on every real stream (a language model on
//! two cores). Streams are taken in a seeded shuffle of their sorted (student, problem) keys, so a sample does
//! not depend on the order of the input rows, and a bigger sample of the same seed contains a smaller one.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::{Submission, streams};

/// Every stream of `rows` (its rows in order), in a seeded shuffle.
fn shuffled(rows: &[Submission], seed: u64) -> Vec<Vec<&Submission>> {
    let mut all: Vec<Vec<&Submission>> =
        streams(rows).into_values().map(|s| s.into_iter().map(|i| &rows[i]).collect()).collect();
    all.shuffle(&mut StdRng::seed_from_u64(seed));
    all
}

/// Whole streams, in the seeded order, until they hold at least `targets` next-step targets (rows with a
/// predecessor), or all of them.
pub fn for_targets(rows: &[Submission], targets: usize, seed: u64) -> Vec<Submission> {
    let mut picked = Vec::new();
    let mut held = 0;
    for stream in shuffled(rows, seed) {
        if held >= targets {
            break;
        }
        held += stream.len() - 1;
        picked.extend(stream.into_iter().cloned());
    }
    picked
}

/// The first `count` streams of the seeded order.
pub fn streams_of(rows: &[Submission], count: usize, seed: u64) -> Vec<Submission> {
    shuffled(rows, seed).into_iter().take(count).flatten().cloned().collect()
}

/// How many next-step targets `rows` hold.
pub fn targets(rows: &[Submission]) -> usize {
    streams(rows).values().map(|s| s.len() - 1).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(lengths: &[usize]) -> Vec<Submission> {
        lengths
            .iter()
            .enumerate()
            .flat_map(|(s, &n)| {
                (0..n).map(move |a| Submission {
                    student: format!("s{s}"),
                    problem: "p".into(),
                    time: jiff::Timestamp::from_second(1_600_000_000 + a as i64).unwrap(),
                    attempt: a as u32 + 1,
                    code: format!("{s}-{a}"),
                    label: None,
                    pass_rate: None,
                    source: super::super::Source::Real,
                    platform_correct: None,
                    generated: None,
                    extra: Default::default(),
                })
            })
            .collect()
    }

    #[test]
    fn samples_are_whole_streams_seeded_and_nested() {
        let all = rows(&[3, 1, 4, 2, 5, 2, 3, 1]);
        let sample = for_targets(&all, 5, 7);
        assert!(targets(&sample) >= 5, "at least the targets asked for");
        for (key, stream) in streams(&sample) {
            assert_eq!(stream.len(), streams(&all)[&key].len(), "stream {key:?} taken whole");
        }
        assert_eq!(sample, for_targets(&all, 5, 7), "the same seed, the same sample");
        let mut reversed = all.clone();
        reversed.reverse();
        assert_eq!(
            streams(&for_targets(&reversed, 5, 7)).keys().collect::<Vec<_>>(),
            streams(&sample).keys().collect::<Vec<_>>(),
            "input order does not matter"
        );
        let small = streams_of(&all, 2, 7);
        let big = streams_of(&all, 4, 7);
        assert_eq!(streams(&small).len(), 2);
        assert!(streams(&small).keys().all(|k| streams(&big).contains_key(k)), "a bigger sample holds the smaller one");
        assert_ne!(streams_of(&all, 4, 8), big, "another seed, another sample");
        assert_eq!(targets(&for_targets(&all, 1000, 7)), targets(&all), "asking for more than there is takes all");
    }
}
