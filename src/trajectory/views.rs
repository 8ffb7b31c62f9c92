//! The views the reference study evaluates on, as row indices into a trajectory set.
//!
//! - Low resolution (Experiment 1): the first, middle (index n / 2) and last submission of each stream.
//! - High resolution (Experiment 2): each submission that has a predecessor, with up to k real predecessors.
//! - Student context: the same student's most recent *earlier* stream on a *different* problem (one whose first
//!   submission came before this stream's first), taken at the same relative position.

use std::collections::BTreeMap;

use super::{Submission, streams};

pub use crate::records::Stage;

/// One Experiment 1 item: a stream's row at a stage, with the context row, if there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageItem {
    pub stage: Stage,
    pub target: usize,
    pub context: Option<usize>,
}

/// One Experiment 2 item: a target row, its real predecessors (oldest first), and a context segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextStepItem {
    pub target: usize,
    pub priors: Vec<usize>,
    /// `priors.len() + 1` rows of the context stream around the same relative position (empty without one).
    pub context: Vec<usize>,
}

/// Streams in time order plus, for each, the student's earlier stream on another problem.
struct Indexed {
    streams: Vec<Vec<usize>>,
    context_of: Vec<Option<usize>>,
}

fn index(rows: &[Submission]) -> Indexed {
    let streams: Vec<Vec<usize>> = streams(rows).into_values().collect();
    let mut by_student: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (s, stream) in streams.iter().enumerate() {
        by_student.entry(rows[stream[0]].student.as_str()).or_default().push(s);
    }
    let start = |s: usize| rows[streams[s][0]].time;
    let mut context_of = vec![None; streams.len()];
    for own in by_student.values() {
        for &s in own {
            context_of[s] = own
                .iter()
                .copied()
                .filter(|&o| start(o) < start(s) && rows[streams[o][0]].problem != rows[streams[s][0]].problem)
                .max_by_key(|&o| start(o));
        }
    }
    Indexed { streams, context_of }
}

/// The row of `stream` at the relative position `position / (n - 1)` of another stream of length `n`.
fn same_relative(stream: &[usize], position: usize, n: usize) -> usize {
    let relative = if n <= 1 { 0.0 } else { position as f64 / (n - 1) as f64 };
    stream[(relative * (stream.len() - 1) as f64).round() as usize]
}

/// Experiment 1 items: every stream at every stage.
pub fn stages(rows: &[Submission]) -> Vec<StageItem> {
    let idx = index(rows);
    let mut items = Vec::new();
    for (s, stream) in idx.streams.iter().enumerate() {
        for stage in Stage::ALL {
            let target = stream[stage.position(stream.len())];
            let context = idx.context_of[s].map(|c| {
                let other = &idx.streams[c];
                other[stage.position(other.len())]
            });
            items.push(StageItem { stage, target, context });
        }
    }
    items
}

/// Experiment 2 items with up to `k` predecessors each.
pub fn next_steps(rows: &[Submission], k: usize) -> Vec<NextStepItem> {
    let idx = index(rows);
    let mut items = Vec::new();
    for (s, stream) in idx.streams.iter().enumerate() {
        for t in 1..stream.len() {
            let priors = stream[t.saturating_sub(k)..t].to_vec();
            let context = match idx.context_of[s] {
                None => Vec::new(),
                Some(c) => {
                    let other = &idx.streams[c];
                    let centre = same_relative(other, t, stream.len());
                    let at = other.iter().position(|&r| r == centre).expect("the row is in its stream");
                    let len = (priors.len() + 1).min(other.len());
                    let begin = (at + 1).saturating_sub(len).min(other.len() - len);
                    other[begin..begin + len].to_vec()
                }
            };
            items.push(NextStepItem { target: stream[t], priors, context });
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trajectory::Source;

    fn row(student: &str, problem: &str, minute: u32) -> Submission {
        Submission {
            student: student.into(),
            problem: problem.into(),
            time: format!("2020-01-01T10:{minute:02}:00Z").parse().unwrap(),
            attempt: 0,
            code: format!("{problem}{minute}"),
            label: None,
            pass_rate: None,
            source: Source::Real,
            platform_correct: None,
            generated: None,
            extra: Default::default(),
        }
    }

    fn rows() -> Vec<Submission> {
        // s1: problem a at minutes 0..4 (5 rows), then problem b at 10..12 (3 rows); s2: problem b alone.
        let mut rows: Vec<Submission> = (0..5).map(|m| row("s1", "a", m)).collect();
        rows.extend((10..13).map(|m| row("s1", "b", m)));
        rows.push(row("s2", "b", 1));
        rows
    }

    #[test]
    fn stages_take_first_middle_last_and_earlier_context() {
        let items = stages(&rows());
        let for_target = |code: &str| items.iter().find(|i| rows()[i.target].code == code).unwrap().clone();
        let b_middle = items
            .iter()
            .find(|i| rows()[i.target].problem == "b" && i.stage == Stage::Middle && rows()[i.target].student == "s1")
            .unwrap();
        assert_eq!(rows()[b_middle.target].code, "b11");
        assert_eq!(rows()[b_middle.context.unwrap()].code, "a2", "same stage of the earlier stream");
        assert_eq!(for_target("a0").context, None, "no earlier problem");
        assert_eq!(for_target("b1").context, None, "s2 has no other stream");
        assert_eq!(items.len(), 9);
    }

    #[test]
    fn next_steps_take_up_to_k_priors_and_a_context_segment() {
        let r = rows();
        let items = next_steps(&r, 3);
        assert_eq!(items.len(), 4 + 2, "every row with a predecessor");
        let codes = |ix: &[usize]| ix.iter().map(|&i| r[i].code.clone()).collect::<Vec<_>>();
        let a4 = items.iter().find(|i| r[i.target].code == "a4").unwrap();
        assert_eq!(codes(&a4.priors), ["a1", "a2", "a3"]);
        let b12 = items.iter().find(|i| r[i.target].code == "b12").unwrap();
        assert_eq!(codes(&b12.priors), ["b10", "b11"]);
        // Last of b's 3 rows -> last of a's 5 rows; a segment of priors + 1 = 3 rows ending there.
        assert_eq!(codes(&b12.context), ["a2", "a3", "a4"]);
        let b11 = items.iter().find(|i| r[i.target].code == "b11").unwrap();
        assert_eq!(codes(&b11.context), ["a1", "a2"], "the middle of a, 2 rows");
    }
}
