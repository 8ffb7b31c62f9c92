//! Leaderboards: for every measure of one mode, the real students' value, each generator's, and which generator
//! is closest. Built from a [`Report`] whose first set is the real one.

use std::fmt::Write as _;

use serde::Serialize;

use super::Report;
use super::tables::MeanStd;
use crate::trajectory::views::Stage;

/// What "closest to the real students" means for a measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// The generator's value nearest the real one (a mean, a share).
    MatchReal,
    /// The smallest value (a distance or error to the real rows).
    Lowest,
    /// The largest value (coverage).
    Highest,
}

/// How a measure's values are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Share,
    Number(usize),
}

#[derive(Debug, Serialize)]
pub struct Measure {
    pub name: &'static str,
    pub goal: Goal,
    pub unit: Unit,
    /// The real students' value (for [`Goal::MatchReal`]; otherwise none).
    pub real: Option<f64>,
    /// One per generator, in [`Leaderboard::generators`] order.
    pub values: Vec<Option<f64>>,
    /// The generators closest to the real students (several on a tie), none when no generator has a value.
    pub closest: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Leaderboard {
    pub title: String,
    pub generators: Vec<String>,
    pub measures: Vec<Measure>,
    /// Per generator: on how many measures it is closest.
    pub wins: Vec<usize>,
    /// Generators whose attempts were the same with and without a tutor's hints (when the bench had a tutor).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hint_blind: Vec<String>,
}

/// One measure as the leaderboard gets it: name, goal, unit, the real students' value, each generator's.
type MeasureValues = (&'static str, Goal, Unit, Option<f64>, Vec<Option<f64>>);

/// Values closer than this are a tie.
const TIE: f64 = 1e-9;

impl Leaderboard {
    fn new(title: String, generators: Vec<String>, measures: Vec<MeasureValues>) -> Self {
        let measures: Vec<Measure> = measures
            .into_iter()
            .map(|(name, goal, unit, real, values)| {
                let badness = |v: f64| match goal {
                    Goal::MatchReal => real.map(|r| (v - r).abs()),
                    Goal::Lowest => Some(v),
                    Goal::Highest => Some(-v),
                };
                let scored: Vec<Option<f64>> = values.iter().map(|v| v.and_then(badness)).collect();
                let best = scored.iter().flatten().copied().min_by(f64::total_cmp);
                let closest = best.map_or_else(Vec::new, |best| {
                    generators
                        .iter()
                        .zip(&scored)
                        .filter(|(_, s)| s.is_some_and(|s| s - best <= TIE))
                        .map(|(g, _)| g.clone())
                        .collect()
                });
                Measure { name, goal, unit, real, values, closest }
            })
            .collect();
        let wins = generators.iter().map(|g| measures.iter().filter(|m| m.closest.contains(g)).count()).collect();
        Self { title, generators, measures, wins, hint_blind: Vec::new() }
    }

    /// Next-step measures (Table 3 and the size of each step).
    pub fn next_step(title: String, report: &Report) -> Self {
        let (real, sims) = report.table3.split_first().expect("the real set comes first");
        let mean = |m: Option<MeanStd>| m.map(|m| m.mean);
        let col = |f: &dyn Fn(&super::NextStepRow) -> Option<f64>| sims.iter().map(f).collect::<Vec<_>>();
        let generators = sims.iter().map(|t| t.set.clone()).collect();
        use Goal::*;
        Self::new(
            title,
            generators,
            vec![
                ("pass rate mean", MatchReal, Unit::Number(3), mean(real.pass_rate), col(&|t| mean(t.pass_rate))),
                ("pass rate MAE", Lowest, Unit::Number(3), None, col(&|t| t.pass_rate_mae)),
                ("no_error share", MatchReal, Unit::Share, real.no_error, col(&|t| t.no_error)),
                ("PEP 8 mean", MatchReal, Unit::Number(2), mean(real.pep8), col(&|t| mean(t.pep8))),
                ("PEP 8 MAE", Lowest, Unit::Number(2), None, col(&|t| t.pep8_mae)),
                ("style mean", MatchReal, Unit::Number(2), mean(real.style), col(&|t| mean(t.style))),
                ("style MAE", Lowest, Unit::Number(2), None, col(&|t| t.style_mae)),
                ("step edit mean", MatchReal, Unit::Number(1), mean(real.step_edit), col(&|t| mean(t.step_edit))),
                ("step edit median", MatchReal, Unit::Number(1), real.step_edit_median, col(&|t| t.step_edit_median)),
                ("unchanged share", MatchReal, Unit::Share, real.unchanged, col(&|t| t.unchanged)),
                ("edit MAE (study)", Lowest, Unit::Number(1), None, col(&|t| t.edit_distance_mae)),
                ("cosine to real", Lowest, Unit::Number(3), None, col(&|t| t.cosine)),
            ],
        )
    }

    /// Stream measures: lengths, endings, transitions, the pass-rate curve, resubmissions, and the last
    /// stage's semantics (Table 1) and labels.
    pub fn streams(title: String, report: &Report) -> Self {
        let (real, sims) = report.stream_realism.split_first().expect("the real set comes first");
        let col = |f: &dyn Fn(&super::StreamRealism) -> Option<f64>| sims.iter().map(f).collect::<Vec<_>>();
        let tv = |s: &super::StreamRealism| {
            let rows: Vec<f64> = s.transition_tv.iter().flatten().copied().collect();
            (!rows.is_empty()).then(|| rows.iter().sum::<f64>() / rows.len() as f64)
        };
        let last = |set: usize, f: &dyn Fn(&super::StageRow) -> Option<f64>| {
            report.table1[set].stages.iter().find(|s| s.stage == Stage::Last).and_then(f)
        };
        let last_no_error = |set: usize| {
            let stage = report.functionality[set].stages.iter().find(|s| s.stage == Stage::Last)?;
            stage.shares.iter().find(|s| s.label == crate::grade::Label::NoError).map(|s| s.share)
        };
        let n = sims.len();
        let generators = sims.iter().map(|s| s.set.clone()).collect();
        use Goal::*;
        Self::new(
            title,
            generators,
            vec![
                ("attempts mean", MatchReal, Unit::Number(2), real.attempts_mean, col(&|s| s.attempts_mean)),
                ("attempts median", MatchReal, Unit::Number(1), real.attempts_median, col(&|s| s.attempts_median)),
                ("attempts KS distance", Lowest, Unit::Number(3), None, col(&|s| s.attempts_ks)),
                ("ending no_error", MatchReal, Unit::Share, real.ending_no_error, col(&|s| s.ending_no_error)),
                ("last stage no_error", MatchReal, Unit::Share, last_no_error(0), (1..=n).map(last_no_error).collect()),
                ("transitions TV (mean of rows)", Lowest, Unit::Number(3), None, col(&tv)),
                ("pass-rate curve distance", Lowest, Unit::Number(3), None, col(&|s| s.pass_curve_distance)),
                ("resubmissions", MatchReal, Unit::Share, real.resubmissions, col(&|s| s.resubmissions)),
                (
                    "last stage KNN distance",
                    Lowest,
                    Unit::Number(3),
                    None,
                    (0..n).map(|i| last(i, &|s| s.knn_distance)).collect(),
                ),
                (
                    "last stage coverage",
                    Highest,
                    Unit::Number(3),
                    None,
                    (0..n).map(|i| last(i, &|s| s.coverage)).collect(),
                ),
            ],
        )
    }

    pub fn markdown(&self) -> String {
        let mut w = String::new();
        let _ = writeln!(w, "### {}\n", self.title);
        let _ = writeln!(w, "| measure | closest means | real | {} | closest |", self.generators.join(" | "));
        let _ = writeln!(w, "|---|---|---:|{}---|", "---:|".repeat(self.generators.len()));
        for m in &self.measures {
            let show = |v: Option<f64>| match (v, m.unit) {
                (None, _) => "–".to_owned(),
                (Some(v), Unit::Share) => format!("{:.1}%", 100.0 * v),
                (Some(v), Unit::Number(digits)) => format!("{v:.digits$}"),
            };
            let goal = match m.goal {
                Goal::MatchReal => "nearest real",
                Goal::Lowest => "lowest",
                Goal::Highest => "highest",
            };
            let cells: Vec<String> = m
                .values
                .iter()
                .zip(&self.generators)
                .map(|(&v, g)| if m.closest.contains(g) { format!("**{}**", show(v)) } else { show(v) })
                .collect();
            let closest = if m.closest.is_empty() { "–".to_owned() } else { m.closest.join(", ") };
            let _ = writeln!(w, "| {} | {goal} | {} | {} | {closest} |", m.name, show(m.real), cells.join(" | "));
        }
        let wins: Vec<String> = self.wins.iter().map(usize::to_string).collect();
        let _ = writeln!(w, "| **closest on** | | | {} | |", wins.join(" | "));
        if !self.hint_blind.is_empty() {
            let _ = writeln!(
                w,
                "\nHint-blind (the same attempts with and without the tutor's hints): {}.",
                self.hint_blind.join(", ")
            );
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_follows_each_goal_and_ties_share_the_win() {
        let board = Leaderboard::new(
            "t".into(),
            vec!["a".into(), "b".into(), "c".into()],
            vec![
                ("mean", Goal::MatchReal, Unit::Number(1), Some(5.0), vec![Some(9.0), Some(4.0), Some(6.0)]),
                ("error", Goal::Lowest, Unit::Number(1), None, vec![Some(0.3), None, Some(0.2)]),
                ("coverage", Goal::Highest, Unit::Number(1), None, vec![Some(0.9), Some(0.1), Some(0.2)]),
                ("nobody", Goal::Lowest, Unit::Share, None, vec![None, None, None]),
            ],
        );
        let closest: Vec<&[String]> = board.measures.iter().map(|m| m.closest.as_slice()).collect();
        assert_eq!(
            closest,
            [&["b".to_owned(), "c".to_owned()][..], &["c".to_owned()], &["a".to_owned()], &[]],
            "5 is 1 from 4 and from 6"
        );
        assert_eq!(board.wins, [1, 1, 2]);
        let md = board.markdown();
        assert!(md.contains("| mean | nearest real | 5.0 | 9.0 | **4.0** | **6.0** | b, c |"), "{md}");
        assert!(md.contains("| nobody | lowest | – | – | – | – | – |"), "{md}");
    }
}
