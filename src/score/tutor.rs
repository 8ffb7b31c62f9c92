//! What a tutor's hints do to one stream generator: the same streams rolled out with and without the tutor,
//! compared. A hint only matters if the simulated student reacts to it; a generator whose every attempt is the
//! same either way is hint-blind.

use std::collections::HashMap;

use serde::Serialize;

use super::derived::mean;
use super::streams::share;
use crate::generate::reply::extract_code;
use crate::grade::Label;
use crate::metrics::similarity;
use crate::trajectory::{Submission, streams};

#[derive(Debug, Serialize)]
pub struct TutorEffect {
    pub generator: String,
    pub streams: usize,
    /// Share of streams whose last attempt is `no_error`, without and with the tutor.
    pub passing: [Option<f64>; 2],
    /// Mean attempts of the streams that end `no_error`, without and with.
    pub attempts_to_pass: [Option<f64>; 2],
    /// Mean over attempt numbers present in both of (mean pass rate with − mean pass rate without).
    pub pass_curve_shift: Option<f64>,
    /// Hints the tutor gave, and the share of them whose code is at least `leak_similarity` similar to the
    /// problem's reference solution.
    pub hints: usize,
    pub leaked: Option<f64>,
    /// Every attempt is the same with and without the hints.
    pub hint_blind: bool,
}

/// Compare `with` (rolled out with the tutor) to `without`; `solutions` maps a problem to its reference solution.
pub fn tutor_effect(
    generator: &str,
    without: &[Submission],
    with: &[Submission],
    solutions: &HashMap<String, String>,
    leak_similarity: f64,
) -> TutorEffect {
    let summary = |rows: &[Submission]| {
        let streams = streams(rows);
        let ends: Vec<(bool, usize)> =
            streams.values().map(|s| (rows[s[s.len() - 1]].label == Some(Label::NoError), s.len())).collect();
        let passing = share(ends.iter().map(|&(p, _)| p));
        let attempts = mean(ends.iter().filter(|(p, _)| *p).map(|&(_, n)| n as f64));
        let mut curve: HashMap<u32, Vec<f64>> = HashMap::new();
        for row in rows {
            curve.entry(row.attempt).or_default().push(row.pass_rate.unwrap_or(0.0));
        }
        (streams.len(), passing, attempts, curve)
    };
    let (n, passing_without, attempts_without, curve_without) = summary(without);
    let (_, passing_with, attempts_with, curve_with) = summary(with);
    let shift = mean(curve_with.iter().filter_map(|(attempt, values)| {
        let before = curve_without.get(attempt)?;
        Some(mean(values.iter().copied())? - mean(before.iter().copied())?)
    }));
    let hints: Vec<(&str, &str)> = with
        .iter()
        .filter_map(|r| Some((r.problem.as_str(), r.generated.as_ref()?.feedback.as_ref()?.hint.as_deref()?)))
        .collect();
    let leaked = share(hints.iter().map(|(problem, hint)| {
        let code = extract_code(hint).map_or_else(|| (*hint).to_owned(), |(code, _)| code);
        solutions.get(*problem).is_some_and(|s| similarity(&code, s) >= leak_similarity)
    }));
    let key = |r: &Submission| (r.student.clone(), r.problem.clone(), r.attempt);
    let codes: HashMap<_, &str> = without.iter().map(|r| (key(r), r.code.as_str())).collect();
    let hint_blind = without.len() == with.len() && with.iter().all(|r| codes.get(&key(r)) == Some(&r.code.as_str()));
    TutorEffect {
        generator: generator.to_owned(),
        streams: n,
        passing: [passing_without, passing_with],
        attempts_to_pass: [attempts_without, attempts_with],
        pass_curve_shift: shift,
        hints: hints.len(),
        leaked,
        hint_blind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trajectory::{Provenance, Source};

    fn row(student: &str, attempt: u32, code: &str, pass_rate: f64, hint: Option<&str>) -> Submission {
        Submission {
            student: student.into(),
            problem: "p".into(),
            time: jiff::Timestamp::from_second(1_600_000_000 + i64::from(attempt)).unwrap(),
            attempt,
            code: code.into(),
            label: Some(if pass_rate == 1.0 { Label::NoError } else { Label::Logical }),
            pass_rate: Some(pass_rate),
            source: Source::Generator("g".into()),
            platform_correct: None,
            generated: Some(Provenance {
                generator: "g".into(),
                seed: 0,
                prompt_sha256: None,
                submit: false,
                raw: None,
                truncated: false,
                feedback: hint.map(|h| crate::records::Feedback {
                    label: Label::Logical,
                    message: None,
                    failing: Vec::new(),
                    hint: Some(h.to_owned()),
                    tutor_error: None,
                }),
                error: None,
            }),
            extra: Default::default(),
        }
    }

    #[test]
    fn effects_against_hand_computed_values() {
        let solutions = HashMap::from([("p".to_owned(), "return x + 1".to_owned())]);
        // Without: a passes at attempt 3, b never (2 attempts). With: a passes at 2, b at 2.
        let without = [
            row("a", 1, "x", 0.0, None),
            row("a", 2, "y", 0.5, None),
            row("a", 3, "z", 1.0, None),
            row("b", 1, "u", 0.0, None),
            row("b", 2, "v", 0.0, None),
        ];
        let with = [
            row("a", 1, "x", 0.0, Some("```python\nreturn x + 1\n```")),
            row("a", 2, "z", 1.0, None),
            row("b", 1, "u", 0.0, Some("think about the loop")),
            row("b", 2, "w", 1.0, None),
        ];
        let effect = tutor_effect("g", &without, &with, &solutions, 0.8);
        assert_eq!(effect.streams, 2);
        assert_eq!(effect.passing, [Some(0.5), Some(1.0)]);
        assert_eq!(effect.attempts_to_pass, [Some(3.0), Some(2.0)]);
        // Attempt 1: 0 vs 0; attempt 2: 1.0 vs 0.25; attempt 3 only without.
        assert_eq!(effect.pass_curve_shift, Some(0.375));
        assert_eq!((effect.hints, effect.leaked), (2, Some(0.5)), "the fenced reference leaks, the nudge does not");
        assert!(!effect.hint_blind);
        assert!(tutor_effect("g", &without, &without, &solutions, 0.8).hint_blind, "the same rows either way");
    }
}
