//! The report's tables as data: columns, rows of formatted cells with their values, and which simulated set
//! comes closest to the real one in each column. `report.md` and `report.html` both render these.

use serde::Serialize;

use super::{MeanStd, Report};
use crate::grade::Label;

/// What "closest" means for a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// An error or a distance: the lowest simulated value is best.
    Lower,
    /// A coverage: the highest simulated value is best.
    Higher,
    /// A measure of the set itself: the simulated value nearest the real set's is best.
    NearReal,
    /// A count or a compound cell: nothing is marked.
    Unranked,
}

#[derive(Debug, Serialize)]
pub struct Column {
    pub name: String,
    pub goal: Goal,
}

#[derive(Debug, Serialize)]
pub struct Cell {
    pub text: String,
    /// The number compared for the column's goal.
    #[serde(skip)]
    pub value: Option<f64>,
    /// This simulated set is the closest to the real one in this column (within its group).
    pub closest: bool,
}

#[derive(Debug, Serialize)]
pub struct Row {
    /// The set's name, then any other key (a stage, a label), shown before the cells.
    pub keys: Vec<String>,
    pub cells: Vec<Cell>,
}

#[derive(Debug, Serialize)]
pub struct TableView {
    /// An anchor name (`table1`).
    pub id: &'static str,
    pub title: String,
    /// What the table shows and how to read it.
    pub intro: String,
    /// Names of the key columns (`set`, then e.g. `stage`).
    pub keys: Vec<&'static str>,
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
}

impl TableView {
    /// Mark the closest simulated cell of each column, among rows whose keys after the set are the same.
    fn mark_closest(mut self, real: &str) -> Self {
        // Rows compared with each other: those whose keys after the set are the same (e.g. one stage).
        let mut groups: std::collections::BTreeMap<Vec<String>, Vec<usize>> = Default::default();
        for (r, row) in self.rows.iter().enumerate() {
            groups.entry(row.keys[1..].to_vec()).or_default().push(r);
        }
        for c in 0..self.columns.len() {
            let goal = self.columns[c].goal;
            for in_group in groups.values() {
                let real_value =
                    in_group.iter().find(|&&r| self.rows[r].keys[0] == real).and_then(|&r| self.rows[r].cells[c].value);
                let score = |v: f64| match goal {
                    Goal::Lower => Some(v),
                    Goal::Higher => Some(-v),
                    Goal::NearReal => real_value.map(|real| (v - real).abs()),
                    Goal::Unranked => None,
                };
                let scored: Vec<(usize, f64)> = in_group
                    .iter()
                    .filter(|&&r| self.rows[r].keys[0] != real)
                    .filter_map(|&r| Some((r, score(self.rows[r].cells[c].value.filter(|v| v.is_finite())?)?)))
                    .collect();
                // Every set that ties for the best value is marked (coverage is often 1.000 for several).
                let best = scored.iter().map(|&(_, v)| v).fold(f64::INFINITY, f64::min);
                for (r, v) in scored {
                    if v <= best + 1e-12 {
                        self.rows[r].cells[c].closest = true;
                    }
                }
            }
        }
        self
    }

    /// The table as GitHub Markdown, closest cells in bold.
    pub fn markdown(&self) -> String {
        let mut md = format!("| {} |", self.keys.join(" | "));
        for c in &self.columns {
            md.push_str(&format!(" {} |", c.name));
        }
        md.push_str(&format!("\n|{}{}\n", "---|".repeat(self.keys.len()), "---:|".repeat(self.columns.len())));
        for r in &self.rows {
            md.push_str(&format!("| {} |", r.keys.join(" | ")));
            for cell in &r.cells {
                if cell.closest {
                    md.push_str(&format!(" **{}** |", cell.text))
                } else {
                    md.push_str(&format!(" {} |", cell.text))
                }
            }
            md.push('\n');
        }
        md
    }
}

fn cell(text: String, value: Option<f64>) -> Cell {
    Cell { text, value, closest: false }
}

fn num(x: Option<f64>, digits: usize) -> Cell {
    let x = x.filter(|v| v.is_finite());
    cell(x.map_or_else(|| "—".to_owned(), |v| format!("{v:.digits$}")), x)
}

fn mean_std(x: Option<MeanStd>, digits: usize) -> Cell {
    cell(x.map_or_else(|| "—".to_owned(), |m| format!("{:.digits$} ({:.digits$})", m.mean, m.std)), x.map(|m| m.mean))
}

fn percent(x: Option<f64>) -> Cell {
    cell(x.map_or_else(|| "—".to_owned(), |v| format!("{:.1}%", 100.0 * v)), x)
}

fn columns(spec: &[(&str, Goal)]) -> Vec<Column> {
    spec.iter().map(|(name, goal)| Column { name: (*name).to_owned(), goal: *goal }).collect()
}

/// The name of the PEP 8 count the tables do not use.
pub(super) fn other_count(report: &Report) -> &'static str {
    match report.pep8 {
        super::Pep8Count::Plain => "wrapped",
        super::Pep8Count::Wrapped => "plain",
    }
}

/// Every table of the report, in order.
pub fn tables(report: &Report) -> Vec<TableView> {
    let real = report.sets.first().map_or(crate::trajectory::Source::Real.name(), |s| s.name.as_str());
    [
        table1(report),
        table2(report),
        table3(report),
        functionality(report),
        streams(report),
        transitions(report),
        edits_per_step(report),
    ]
    .into_iter()
    .map(|t| t.mark_closest(real))
    .collect()
}

fn table1(report: &Report) -> TableView {
    use Goal::*;
    TableView {
        id: "table1",
        title: "Table 1: semantic realism per stage".into(),
        intro: format!(
            "Average KNN distance (k = {}, real → simulated; lower is better) and coverage (k = {}, simulated → real; \
             higher is better), per problem, then averaged over problems.",
            report.knn_k, report.coverage_k
        ),
        keys: vec!["set"],
        columns: columns(&[
            ("first KNN ↓", Lower),
            ("first coverage ↑", Higher),
            ("middle KNN ↓", Lower),
            ("middle coverage ↑", Higher),
            ("last KNN ↓", Lower),
            ("last coverage ↑", Higher),
        ]),
        rows: report
            .table1
            .iter()
            .map(|t| Row {
                keys: vec![t.set.clone()],
                cells: t.stages.iter().flat_map(|s| [num(s.knn_distance, 3), num(s.coverage, 3)]).collect(),
            })
            .collect(),
    }
}

fn table2(report: &Report) -> TableView {
    use Goal::*;
    let other = other_count(report);
    TableView {
        id: "table2",
        title: "Table 2: style at the last stage".into(),
        intro: "PEP 8 violations and style score of each stream's last row; MAE against the real row of the same student and problem.".into(),
        keys: vec!["set"],
        columns: columns(&[
            ("n", Unranked),
            ("PEP 8 mean (std)", NearReal),
            ("PEP 8 MAE", Lower),
            ("style mean (std)", NearReal),
            ("style MAE", Lower),
            (&format!("{other} PEP 8 mean (std)"), NearReal),
            (&format!("{other} PEP 8 MAE"), Lower),
        ]),
        rows: report
            .table2
            .iter()
            .map(|t| Row {
                keys: vec![t.set.clone()],
                cells: vec![
                    num(Some(t.n as f64), 0),
                    mean_std(t.pep8, 2),
                    num(t.pep8_mae, 2),
                    mean_std(t.style, 2),
                    num(t.style_mae, 2),
                    mean_std(t.pep8_other, 2),
                    num(t.pep8_other_mae, 2),
                ],
            })
            .collect(),
    }
}

fn table3(report: &Report) -> TableView {
    use Goal::*;
    let other = other_count(report);
    TableView {
        id: "table3",
        title: "Table 3: next step".into(),
        intro: "Real rows with a predecessor in their stream, and the simulated rows paired with them. Pass rate = passed \
                examples / all examples; no_error = share of rows that pass every example; edit = character edit distance \
                to the previous row of the same stream of that set (the study's measure); step = edit distance from the real \
                attempt before the target (what the generator saw last), mean and median; unchanged = share of rows equal \
                to it; cosine = mean cosine distance to the real partner."
            .into(),
        keys: vec!["set"],
        columns: columns(&[
            ("n", Unranked),
            ("pass rate mean (std)", NearReal),
            ("pass rate MAE", Lower),
            ("no_error", NearReal),
            ("PEP 8 mean (std)", NearReal),
            ("PEP 8 MAE", Lower),
            ("style mean (std)", NearReal),
            ("style MAE", Lower),
            ("edit mean (std)", NearReal),
            ("edit MAE", Lower),
            ("step mean", NearReal),
            ("step median", NearReal),
            ("unchanged", NearReal),
            ("cosine", Lower),
            (&format!("{other} PEP 8 mean (std)"), NearReal),
            (&format!("{other} PEP 8 MAE"), Lower),
        ]),
        rows: report
            .table3
            .iter()
            .map(|t| Row {
                keys: vec![t.set.clone()],
                cells: vec![
                    num(Some(t.n as f64), 0),
                    mean_std(t.pass_rate, 3),
                    num(t.pass_rate_mae, 3),
                    percent(t.no_error),
                    mean_std(t.pep8, 2),
                    num(t.pep8_mae, 2),
                    mean_std(t.style, 2),
                    num(t.style_mae, 2),
                    mean_std(t.edit_distance, 1),
                    num(t.edit_distance_mae, 1),
                    num(t.step_edit.map(|s| s.mean), 1),
                    num(t.step_edit_median, 1),
                    percent(t.unchanged),
                    num(t.cosine, 3),
                    mean_std(t.pep8_other, 2),
                    num(t.pep8_other_mae, 2),
                ],
            })
            .collect(),
    }
}

fn functionality(report: &Report) -> TableView {
    let mut spec: Vec<(String, Goal)> = vec![("n".into(), Goal::Unranked)];
    spec.extend(Label::ALL.iter().map(|l| (l.to_string(), Goal::NearReal)));
    TableView {
        id: "functionality",
        title: "Functionality per stage".into(),
        intro: "Share of each label at each stage (± √(p(1−p)/N)).".into(),
        keys: vec!["set", "stage"],
        columns: spec.into_iter().map(|(name, goal)| Column { name, goal }).collect(),
        rows: report
            .functionality
            .iter()
            .flat_map(|f| {
                f.stages.iter().map(|s| {
                    let mut cells = vec![num(Some(s.n as f64), 0)];
                    cells.extend(
                        s.shares
                            .iter()
                            .map(|x| cell(format!("{:.1}% ± {:.1}", 100.0 * x.share, 100.0 * x.error), Some(x.share))),
                    );
                    Row { keys: vec![f.set.clone(), s.stage.as_str().to_owned()], cells }
                })
            })
            .collect(),
    }
}

fn streams(report: &Report) -> TableView {
    use Goal::*;
    TableView {
        id: "streams",
        title: "Streams".into(),
        intro: "Each set's streams as written (for a next-step set: its predicted rows grouped by stream). KS = two-sample \
                Kolmogorov–Smirnov statistic of attempts per stream against the real set; resubmitted = attempts whose \
                code is exactly the attempt before; pass-curve distance = mean |difference| of the mean pass rate per \
                normalized step from the real curve; TV = total variation distance of each row of the label-transition \
                matrix from the real row, from no_error / logical / runtime / compile."
            .into(),
        keys: vec!["set"],
        columns: columns(&[
            ("streams", Unranked),
            ("attempts median (mean)", NearReal),
            ("attempts KS", Lower),
            ("ending no_error", NearReal),
            ("resubmitted", NearReal),
            ("pass-curve distance", Lower),
            ("transition TV", Unranked),
        ]),
        rows: report
            .stream_realism
            .iter()
            .map(|s| {
                let attempts = format!("{} ({})", num(s.attempts_median, 1).text, num(s.attempts_mean, 2).text);
                let tv: Vec<String> = s.transition_tv.iter().map(|t| num(*t, 2).text).collect();
                Row {
                    keys: vec![s.set.clone()],
                    cells: vec![
                        num(Some(s.streams as f64), 0),
                        cell(attempts, s.attempts_median),
                        num(s.attempts_ks, 3),
                        percent(s.ending_no_error),
                        percent(s.resubmissions),
                        num(s.pass_curve_distance, 3),
                        cell(tv.join(" / "), None),
                    ],
                }
            })
            .collect(),
    }
}

fn transitions(report: &Report) -> TableView {
    let mut spec: Vec<(String, Goal)> = Label::ALL.iter().map(|l| (format!("→ {l}"), Goal::NearReal)).collect();
    spec.push(("n".into(), Goal::Unranked));
    TableView {
        id: "transitions",
        title: "Label transitions".into(),
        intro: "P(label at t+1 | label at t), with the number of transitions from each label.".into(),
        keys: vec!["set", "from"],
        columns: spec.into_iter().map(|(name, goal)| Column { name, goal }).collect(),
        rows: report
            .stream_realism
            .iter()
            .flat_map(|s| {
                Label::ALL.iter().zip(s.transitions.iter().zip(&s.transition_counts)).map(|(from, (row, counts))| {
                    let mut cells: Vec<Cell> = match row {
                        Some(p) => p.iter().map(|v| cell(format!("{v:.2}"), Some(*v))).collect(),
                        None => (0..4).map(|_| cell("—".into(), None)).collect(),
                    };
                    cells.push(num(Some(counts.iter().sum::<usize>() as f64), 0));
                    Row { keys: vec![s.set.clone(), from.to_string()], cells }
                })
            })
            .collect(),
    }
}

/// Streams can run far past the typical length; the report's edit table stops here.
const EDIT_STEPS_SHOWN: usize = 10;

fn edits_per_step(report: &Report) -> TableView {
    let steps: std::collections::BTreeSet<usize> = report
        .stream_realism
        .iter()
        .flat_map(|s| s.edit_per_step.iter().map(|e| e.step))
        .filter(|&step| step <= EDIT_STEPS_SHOWN)
        .collect();
    TableView {
        id: "edits",
        title: "Edits per normalized step".into(),
        intro: format!(
            "Edit distance to the previous attempt per normalized step: median (p25–p75); steps up to \
             {EDIT_STEPS_SHOWN} here, every step in `metrics.json`."
        ),
        keys: vec!["set"],
        columns: steps.iter().map(|s| Column { name: format!("step {s}"), goal: Goal::NearReal }).collect(),
        rows: report
            .stream_realism
            .iter()
            .map(|s| Row {
                keys: vec![s.set.clone()],
                cells: steps
                    .iter()
                    .map(|step| match s.edit_per_step.iter().find(|e| e.step == *step) {
                        Some(e) => cell(format!("{:.0} ({:.0}–{:.0})", e.median, e.p25, e.p75), Some(e.median)),
                        None => cell("—".into(), None),
                    })
                    .collect(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(goal: Goal, values: &[(&str, &str, f64)]) -> TableView {
        TableView {
            id: "t",
            title: String::new(),
            intro: String::new(),
            keys: vec!["set", "stage"],
            columns: vec![Column { name: "x".into(), goal }],
            rows: values
                .iter()
                .map(|(set, stage, v)| Row {
                    keys: vec![(*set).into(), (*stage).into()],
                    cells: vec![num(Some(*v), 1)],
                })
                .collect(),
        }
        .mark_closest("real")
    }

    fn marked(t: &TableView) -> Vec<(String, String)> {
        t.rows.iter().filter(|r| r.cells[0].closest).map(|r| (r.keys[0].clone(), r.keys[1].clone())).collect()
    }

    #[test]
    fn the_closest_simulated_value_is_marked_per_group_and_never_the_real_one() {
        let rows = [
            ("real", "first", 5.0),
            ("a", "first", 9.0),
            ("b", "first", 4.0),
            ("real", "last", 1.0),
            ("a", "last", 1.5),
            ("b", "last", 3.0),
        ];
        assert_eq!(marked(&view(Goal::NearReal, &rows)), [("b".into(), "first".into()), ("a".into(), "last".into())]);
        assert_eq!(marked(&view(Goal::Lower, &rows)), [("b".into(), "first".into()), ("a".into(), "last".into())]);
        assert_eq!(marked(&view(Goal::Higher, &rows)), [("a".into(), "first".into()), ("b".into(), "last".into())]);
        assert!(marked(&view(Goal::Unranked, &rows)).is_empty());
        let tied = [("real", "first", 1.0), ("a", "first", 1.0), ("b", "first", 1.0), ("c", "first", 0.5)];
        assert_eq!(marked(&view(Goal::Higher, &tied)), [("a".into(), "first".into()), ("b".into(), "first".into())]);
        let md = view(Goal::Lower, &rows).markdown();
        assert!(md.contains("| b | first | **4.0** |") && md.contains("| real | first | 5.0 |"), "{md}");
    }
}
