//! Per-problem time limits from the reference solution's own times, as competitive judges set them: a hang then
//! costs a small multiple of what a correct program needs instead of the global limit.

use std::time::Duration;

use super::{Grader, Tests};

/// Runs of the reference solution timed; each example's time is its fastest run (the others met a busy core).
const TIMED_RUNS: usize = 3;
/// The least limit suggested, whatever the solution's speed: room for start-up noise on a busy machine.
const FLOOR: Duration = Duration::from_millis(50);
/// How many times the slowest example's time a limit allows: room for a slower machine and a slower correct
/// solution.
const HEADROOM: u32 = 20;

/// The slowest example of `solution` against `tests`, each example timed at its fastest of a few runs, with
/// the tests' own limit lifted (so that a limit set too tight can be measured again).
pub async fn slowest_example(grader: &Grader, fixed: &str, solution: &str, tests: &Tests) -> Duration {
    let unlimited = tests.clone().limited(None);
    let mut fastest = vec![Duration::MAX; tests.total()];
    for _ in 0..TIMED_RUNS {
        let (_, times) = grader.grade_timed(fixed, solution, &unlimited).await;
        for (best, time) in fastest.iter_mut().zip(times) {
            *best = (*best).min(time);
        }
    }
    fastest.into_iter().max().unwrap_or_default()
}

/// max(50 ms, 20× `slowest`), rounded up to the millisecond and never above `ceiling` (the global limit).
pub fn suggested_limit(slowest: Duration, ceiling: Duration) -> Duration {
    let wanted = (slowest * HEADROOM).max(FLOOR);
    Duration::from_millis(wanted.as_micros().div_ceil(1000) as u64).min(ceiling)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_have_a_floor_headroom_and_a_ceiling() {
        let ceiling = Duration::from_secs(2);
        assert_eq!(suggested_limit(Duration::from_micros(300), ceiling), Duration::from_millis(50));
        assert_eq!(suggested_limit(Duration::from_micros(12_340), ceiling), Duration::from_millis(247));
        assert_eq!(suggested_limit(Duration::from_millis(300), ceiling), ceiling);
    }
}
