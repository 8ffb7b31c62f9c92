//! `report.html`: the tables, the figures inline and the trajectory explorer in one self-contained file (no
//! network, no external script or font), rendered with minijinja from `report.html` beside this file.

use minijinja::{Environment, context};

use super::Report;
use super::explorer::Explorer;
use super::plots::Figure;
use super::report::{Provenance, method};
use super::table_view;
use crate::grade::Label;

const TEMPLATE: &str = include_str!("report.html");
const SCRIPT: &str = include_str!("explorer.js");

pub fn render(report: &Report, from: &Provenance, figures: &[Figure], explorer: &Explorer) -> anyhow::Result<String> {
    let mut env = Environment::new();
    // The name ends in .html, so minijinja escapes every value but those marked `|safe` (the SVGs, which
    // plotters escapes itself, the script, and the explorer's JSON, whose `<` are escaped).
    env.add_template("report.html", TEMPLATE)?;
    let page = env.get_template("report.html")?.render(context! {
        real => from.real,
        sims => from.sims,
        version => env!("CARGO_PKG_VERSION"),
        sets => &report.sets,
        method => method(report, from),
        tables => table_view::tables(report),
        figures => figures,
        labels => Label::ALL.iter().map(|l| l.to_string()).collect::<Vec<_>>(),
        explorer => explorer.script_json()?,
        script => SCRIPT,
    })?;
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::explorer::{Attempt, Stream};
    use crate::score::{Pep8Count, SetSummary, StyleFit};

    #[test]
    fn hostile_names_and_code_cannot_break_out_of_the_page() {
        let hostile = "</script><script>alert(1)</script><b>x</b>";
        let report = Report {
            pep8: Pep8Count::Plain,
            knn_k: 3,
            coverage_k: 10,
            sets: vec![SetSummary { name: hostile.into(), rows: 1, streams: 1, problems: 1 }],
            style_score: StyleFit {
                features: ["a", "b", "c", "d", "e"],
                mean: [0.0; 5],
                std: [1.0; 5],
                loadings: [0.0; 5],
            },
            functionality: vec![],
            table1: vec![],
            table2: vec![],
            table3: vec![],
            progress: vec![],
            stream_realism: vec![],
            embedding_pca_explained: [0.0; 2],
            embedding_points: vec![],
        };
        let attempt = Attempt {
            attempt: 1,
            label: Label::Compile,
            pass_rate: 0.0,
            code: hostile.into(),
            diff: None,
            failing: vec![],
            message: None,
            hint: Some(hostile.into()),
        };
        let explorer = Explorer {
            sets: vec![hostile.into()],
            streams: vec![Stream {
                problem: hostile.into(),
                student: hostile.into(),
                by_set: [(0, vec![attempt])].into(),
            }],
        };
        let sims = [hostile.to_owned()];
        let from = Provenance { real: hostile, sims: &sims, embedder: hostile };
        let page = render(&report, &from, &[], &explorer).unwrap();
        // Only the page's own two script elements close; the hostile text is escaped everywhere.
        assert_eq!(page.matches("</script>").count(), 2, "{page}");
        assert!(!page.contains("<b>x</b>") && !page.contains("<script>alert"), "{page}");
        assert!(page.contains("&lt;b&gt;x&lt;"), "the name is shown, escaped");
    }
}
