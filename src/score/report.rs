//! `report.md`: the reference study's table shapes, one row per set, the closest simulated value per column in
//! bold ([`table_view`](super::table_view) makes the tables; `report.html` renders the same ones).

use std::fmt::Write;

use super::Report;
use super::table_view::{self, other_count};

/// What the report says about where its inputs came from.
pub struct Provenance<'a> {
    pub real: &'a str,
    pub sims: &'a [String],
    pub embedder: &'a str,
}

/// The paragraph that says how the sets were paired and what each measure is.
pub fn method(report: &Report, from: &Provenance) -> String {
    format!(
        "Stages are the first, middle and last row of each stream. A simulated stage row is paired with the real \
         row of the same student and problem; a simulated next-step row with the real row of the same student, \
         problem and attempt. MAE = mean absolute error over the pairs. PEP 8 = pycodestyle 2.14.0 violations \
         ({} count; `--pep8` chooses; Tables 2 and 3 also show the other one, {}: the study's count runs \
         pycodestyle on each program wrapped in a function, the plain one on the program as submitted). Style score = \
         PC1 of standardized lines, chars, AST depth, width and nodes, fitted on the pooled rows of every set \
         (loadings {}). Embeddings: `{}`. In each column the simulated set closest to the real one is in bold.",
        match report.pep8 {
            super::Pep8Count::Plain => "plain",
            super::Pep8Count::Wrapped => "the study's wrapped",
        },
        other_count(report),
        report.style_score.loadings.iter().map(|l| format!("{l:.3}")).collect::<Vec<_>>().join(", "),
        from.embedder,
    )
}

pub fn markdown(report: &Report, from: &Provenance) -> String {
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "# studentsim score\n");
    let _ = writeln!(
        w,
        "Real set: `{}`. Simulated sets: {}.\n",
        from.real,
        from.sims.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
    );
    let _ = writeln!(w, "| set | rows | streams | problems |\n|---|---:|---:|---:|");
    for s in &report.sets {
        let _ = writeln!(w, "| {} | {} | {} | {} |", s.name, s.rows, s.streams, s.problems);
    }
    let _ = writeln!(w, "\n{}\n", method(report, from));
    for table in table_view::tables(report) {
        let _ = writeln!(w, "## {}\n\n{}\n\n{}", table.title, table.intro, table.markdown());
    }
    let _ = writeln!(w, "## Plots\n");
    let _ = writeln!(w, "- `error_types.svg`: label shares per stage, per set, with error bars.");
    let _ =
        writeln!(w, "- `progress.svg`: pass rate, style score and edit distance per normalized step (95% intervals).");
    let _ = writeln!(
        w,
        "- `embeddings_pca.svg`: the embeddings on their first two principal components ({:.1}% and {:.1}% of the variance).",
        100.0 * report.embedding_pca_explained[0],
        100.0 * report.embedding_pca_explained[1]
    );
    let _ = writeln!(w, "- `report.html`: all of this in one file, the figures inline, with a trajectory explorer.");
    md
}
