//! `report.md`: the reference study's table shapes, one row per set.

use std::fmt::Write;

use super::{MeanStd, Report};
use crate::grade::Label;

/// What the report says about where its inputs came from.
pub struct Provenance<'a> {
    pub real: &'a str,
    pub sims: &'a [String],
    pub embedder: &'a str,
}

fn num(x: Option<f64>, digits: usize) -> String {
    x.filter(|v| v.is_finite()).map_or_else(|| "—".to_owned(), |v| format!("{v:.digits$}"))
}

fn mean_std(x: Option<MeanStd>, digits: usize) -> String {
    x.map_or_else(|| "—".to_owned(), |m| format!("{:.digits$} ({:.digits$})", m.mean, m.std))
}

fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "—".to_owned(), |v| format!("{:.1}%", 100.0 * v))
}

pub fn markdown(report: &Report, from: &Provenance) -> String {
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "# studentsim score\n");
    let _ = writeln!(w, "Real set: `{}`. Simulated sets: {}.\n", from.real, from.sims.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", "));
    let _ = writeln!(w, "| set | rows | streams | problems |\n|---|---:|---:|---:|");
    for s in &report.sets {
        let _ = writeln!(w, "| {} | {} | {} | {} |", s.name, s.rows, s.streams, s.problems);
    }
    let other = match report.pep8 {
        super::Pep8Count::Plain => "wrapped",
        super::Pep8Count::Wrapped => "plain",
    };
    let _ = writeln!(
        w,
        "\nStages are the first, middle and last row of each stream. A simulated stage row is paired with the real \
         row of the same student and problem; a simulated next-step row with the real row of the same student, \
         problem and attempt. MAE = mean absolute error over the pairs. PEP 8 = pycodestyle 2.14.0 violations \
         ({} count; `--pep8` chooses; Tables 2 and 3 also show the other one, {other}: the study's count runs \
         pycodestyle on each program wrapped in a function, the plain one on the program as submitted). Style score = PC1 of standardized lines, chars, AST depth, width and nodes, fitted on the \
         pooled rows of every set (loadings {}). Embeddings: `{}`.\n",
        match report.pep8 {
            super::Pep8Count::Plain => "plain",
            super::Pep8Count::Wrapped => "the study's wrapped",
        },
        report.style_score.loadings.iter().map(|l| format!("{l:.3}")).collect::<Vec<_>>().join(", "),
        from.embedder,
    );

    let _ = writeln!(w, "## Table 1: semantic realism per stage\n");
    let _ = writeln!(
        w,
        "Average KNN distance (k = {}, real → simulated; lower is better) and coverage (k = {}, simulated → real; \
         higher is better), per problem, then averaged over problems.\n",
        report.knn_k, report.coverage_k
    );
    let _ = writeln!(w, "| set | first KNN ↓ | first coverage ↑ | middle KNN ↓ | middle coverage ↑ | last KNN ↓ | last coverage ↑ |");
    let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---:|");
    for t in &report.table1 {
        let cells: Vec<String> = t.stages.iter().flat_map(|s| [num(s.knn_distance, 3), num(s.coverage, 3)]).collect();
        let _ = writeln!(w, "| {} | {} |", t.set, cells.join(" | "));
    }

    let _ = writeln!(w, "\n## Table 2: style at the last stage\n");
    let _ = writeln!(
        w,
        "| set | n | PEP 8 mean (std) | PEP 8 MAE | style mean (std) | style MAE | {other} PEP 8 mean (std) | {other} PEP 8 MAE |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for t in &report.table2 {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            t.set,
            t.n,
            mean_std(t.pep8, 2),
            num(t.pep8_mae, 2),
            mean_std(t.style, 2),
            num(t.style_mae, 2),
            mean_std(t.pep8_other, 2),
            num(t.pep8_other_mae, 2)
        );
    }

    let _ = writeln!(w, "\n## Table 3: next step\n");
    let _ = writeln!(
        w,
        "Real rows with a predecessor in their stream, and the simulated rows paired with them. Pass rate = passed \
         examples / all examples; no_error = share of rows that pass every example; edit = character edit distance \
         to the previous row of the same stream of that set (the study's measure); step = edit distance from the real \
         attempt before the target (what the generator saw last), mean and median; unchanged = share of rows equal \
         to it; cosine = mean cosine distance to the real partner.\n"
    );
    let _ = writeln!(w, "| set | n | pass rate mean (std) | pass rate MAE | no_error | PEP 8 mean (std) | PEP 8 MAE | style mean (std) | style MAE | edit mean (std) | edit MAE | step mean | step median | unchanged | cosine | {other} PEP 8 mean (std) | {other} PEP 8 MAE |");
    let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for t in &report.table3 {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            t.set,
            t.n,
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
            num(t.pep8_other_mae, 2)
        );
    }

    let _ = writeln!(w, "\n## Functionality per stage\n");
    let _ = writeln!(w, "Share of each label (± √(p(1−p)/N)).\n");
    let _ = writeln!(w, "| set | stage | n | no_error | logical | runtime | compile |\n|---|---|---:|---:|---:|---:|---:|");
    for f in &report.functionality {
        for s in &f.stages {
            let shares: Vec<String> =
                s.shares.iter().map(|x| format!("{:.1}% ± {:.1}", 100.0 * x.share, 100.0 * x.error)).collect();
            let _ = writeln!(w, "| {} | {} | {} | {} |", f.set, s.stage.as_str(), s.n, shares.join(" | "));
        }
    }

    streams_section(w, report);

    let _ = writeln!(w, "\n## Plots\n");
    let _ = writeln!(w, "- `error_types.svg`: label shares per stage, per set, with error bars.");
    let _ = writeln!(w, "- `progress.svg`: pass rate, style score and edit distance per normalized step (95% intervals).");
    let _ = writeln!(
        w,
        "- `embeddings_pca.svg`: the embeddings on their first two principal components ({:.1}% and {:.1}% of the variance).",
        100.0 * report.embedding_pca_explained[0],
        100.0 * report.embedding_pca_explained[1]
    );
    md
}

/// Streams can run far past the typical length; the report's edit table stops here.
const EDIT_STEPS_SHOWN: usize = 10;

/// Stream-level realism: one summary row per set, the label transitions, and edits per normalized step.
fn streams_section(w: &mut String, report: &Report) {
    let _ = writeln!(w, "\n## Streams\n");
    let _ = writeln!(
        w,
        "Each set's streams as written (for a next-step set: its predicted rows grouped by stream). KS = two-sample \
         Kolmogorov–Smirnov statistic of attempts per stream against the real set; resubmitted = attempts whose \
         code is exactly the attempt before; pass-curve distance = mean |difference| of the mean pass rate per \
         normalized step from the real curve; TV = total variation distance of each row of the label-transition \
         matrix from the real row, from no_error / logical / runtime / compile.\n"
    );
    let _ = writeln!(w, "| set | streams | attempts median (mean) | attempts KS | ending no_error | resubmitted | pass-curve distance | transition TV |");
    let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---:|---|");
    for s in &report.stream_realism {
        let attempts = format!("{} ({})", num(s.attempts_median, 1), num(s.attempts_mean, 2));
        let tv: Vec<String> = s.transition_tv.iter().map(|t| num(*t, 2)).collect();
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            s.set,
            s.streams,
            attempts,
            num(s.attempts_ks, 3),
            percent(s.ending_no_error),
            percent(s.resubmissions),
            num(s.pass_curve_distance, 3),
            tv.join(" / ")
        );
    }
    let _ = writeln!(w, "\nP(label at t+1 | label at t), with the number of transitions from each label:\n");
    let header: Vec<String> = Label::ALL.iter().map(|l| format!("→ {l}")).collect();
    let _ = writeln!(w, "| set | from | {} | n |\n|---|---|---:|---:|---:|---:|---:|", header.join(" | "));
    for s in &report.stream_realism {
        for (from, (row, counts)) in Label::ALL.iter().zip(s.transitions.iter().zip(&s.transition_counts)) {
            let cells: Vec<String> = match row {
                Some(p) => p.iter().map(|v| format!("{:.2}", v)).collect(),
                None => vec!["—".to_owned(); 4],
            };
            let _ = writeln!(w, "| {} | {from} | {} | {} |", s.set, cells.join(" | "), counts.iter().sum::<usize>());
        }
    }
    let _ = writeln!(
        w,
        "\nEdit distance to the previous attempt per normalized step: median (p25–p75); steps up to \
         {EDIT_STEPS_SHOWN} here, every step in `metrics.json`.\n"
    );
    let steps: std::collections::BTreeSet<usize> = report
        .stream_realism
        .iter()
        .flat_map(|s| s.edit_per_step.iter().map(|e| e.step))
        .filter(|&step| step <= EDIT_STEPS_SHOWN)
        .collect();
    let _ = writeln!(
        w,
        "| set | {} |\n|---|{}",
        steps.iter().map(|s| format!("step {s}")).collect::<Vec<_>>().join(" | "),
        "---:|".repeat(steps.len())
    );
    for s in &report.stream_realism {
        let cells: Vec<String> = steps
            .iter()
            .map(|step| {
                s.edit_per_step.iter().find(|e| e.step == *step).map_or_else(
                    || "—".to_owned(),
                    |e| format!("{:.0} ({:.0}–{:.0})", e.median, e.p25, e.p75),
                )
            })
            .collect();
        let _ = writeln!(w, "| {} | {} |", s.set, cells.join(" | "));
    }
}
