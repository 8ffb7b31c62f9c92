//! `studentsim score` end to end on the bundled example trajectories (graded in the real sandbox, embedded with
//! the real all-MiniLM-L6-v2): a set against itself, a "copy the previous submission" set, and bad input.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common;

use common::{EXAMPLES, example_rows, example_streams, studentsim};

fn write_rows(path: &Path, rows: &[Value]) -> PathBuf {
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(path, text).unwrap();
    path.to_owned()
}

/// The example rows relabelled as generator `source`.
fn renamed(rows: &[Value], source: &str) -> Vec<Value> {
    rows.iter()
        .cloned()
        .map(|mut r| {
            r["source"] = source.into();
            r
        })
        .collect()
}

/// For every row with a predecessor in its stream: the predecessor's code, as that row's attempt.
fn copy_last(rows: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for pair in rows.windows(2) {
        let (prev, row) = (&pair[0], &pair[1]);
        if prev["student"] == row["student"] && prev["problem"] == row["problem"] {
            let mut sim = row.clone();
            sim["code"] = prev["code"].clone();
            sim["source"] = "copy-last".into();
            out.push(sim);
        }
    }
    out
}

fn set<'a>(table: &'a Value, name: &str) -> &'a Value {
    table
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["set"] == name)
        .unwrap_or_else(|| panic!("no row for {name} in {table}"))
}

#[test]
fn a_set_scored_against_itself_has_zero_error_and_full_coverage() {
    let dir = tempfile::tempdir().unwrap();
    let rows = example_rows();
    let own = write_rows(&dir.path().join("self.jsonl"), &renamed(&rows, "self"));
    let copy = write_rows(&dir.path().join("copy.jsonl"), &copy_last(&rows));
    let out = dir.path().join("report");
    let run = studentsim(&[
        "score",
        "--real",
        EXAMPLES,
        "--sim",
        own.to_str().unwrap(),
        "--sim",
        copy.to_str().unwrap(),
        "--example-timeout",
        common::QUICK_EXAMPLE_TIMEOUT,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(String::from_utf8_lossy(&run.stdout).contains("| copy-last |"));

    let metrics: Value = serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let sets = metrics["sets"].as_array().unwrap();
    assert_eq!(sets.len(), 3);
    let streams = example_streams();
    let next_steps = (rows.len() - streams) as u64;
    assert_eq!(
        (sets[0]["rows"].as_u64(), sets[0]["streams"].as_u64()),
        (Some(rows.len() as u64), Some(streams as u64))
    );

    // Against itself: zero error everywhere, full coverage at every stage.
    let t2 = set(&metrics["table2"], "self");
    assert_eq!(
        (t2["pairs"].as_u64(), t2["pep8_mae"].as_f64(), t2["style_mae"].as_f64()),
        (Some(streams as u64), Some(0.0), Some(0.0))
    );
    let t3 = set(&metrics["table3"], "self");
    assert_eq!(
        (t3["n"].as_u64(), t3["pass_rate_mae"].as_f64(), t3["pep8_mae"].as_f64()),
        (Some(next_steps), Some(0.0), Some(0.0))
    );
    assert!(t3["cosine"].as_f64().unwrap().abs() < 1e-6, "{t3}");
    for stage in set(&metrics["table1"], "self")["stages"].as_array().unwrap() {
        assert_eq!(stage["coverage"].as_f64(), Some(1.0), "{stage}");
    }
    assert_eq!(set(&metrics["table3"], "real")["pass_rate"], t3["pass_rate"]);
    // The same streams: every stream-level distance is zero.
    let s = set(&metrics["stream_realism"], "self");
    assert_eq!((s["attempts_ks"].as_f64(), s["pass_curve_distance"].as_f64()), (Some(0.0), Some(0.0)), "{s}");
    for tv in s["transition_tv"].as_array().unwrap() {
        assert!(tv.is_null() || tv.as_f64() == Some(0.0), "{s}");
    }
    assert_eq!(s["resubmissions"], set(&metrics["stream_realism"], "real")["resubmissions"]);

    // Copying the previous submission: the same number of next steps, but not the same code.
    let c3 = set(&metrics["table3"], "copy-last");
    assert_eq!(c3["n"].as_u64(), Some(next_steps));
    assert!(c3["cosine"].as_f64().unwrap() > 0.001, "{c3}");
    assert!(c3["pass_rate_mae"].as_f64().unwrap() > 0.0, "{c3}");
    let real_no_error = set(&metrics["table3"], "real")["no_error"].as_f64().unwrap();
    assert!(c3["no_error"].as_f64().unwrap() < real_no_error, "copies lag one attempt behind: {c3}");

    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for heading in ["## Table 1", "## Table 2", "## Table 3", "## Streams", "| self |", "| copy-last |"] {
        assert!(report.contains(heading), "{heading} missing from the report");
    }
    for plot in ["error_types.svg", "progress.svg", "embeddings_pca.svg"] {
        let svg = std::fs::read_to_string(out.join(plot)).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("copy-last"), "{plot}");
    }
    // each figure also as a PNG at twice its SVG size, for a paper
    for plot in ["error_types", "progress", "embeddings_pca", "attempts"] {
        let svg = std::fs::read_to_string(out.join(format!("{plot}.svg"))).unwrap();
        let png = std::fs::read(out.join(format!("{plot}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{plot}.png is no PNG");
        let pixels = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
        let attribute = |name: &str| -> u32 {
            let rest = svg.split_once(&format!(" {name}=\"")).unwrap().1;
            rest.split_once('"').unwrap().0.parse().unwrap()
        };
        assert_eq!((pixels(16), pixels(20)), (2 * attribute("width"), 2 * attribute("height")), "{plot}.png's size");
        // drawn, not blank: a white PNG of that size compresses to a few kilobytes
        assert!(png.len() > 20_000, "{plot}.png is {} bytes", png.len());
    }

    // Both PEP 8 counts: with --pep8 wrapped the columns swap.
    assert!(report.contains("| wrapped PEP 8 mean (std) |"), "the other count's column");
    let wrapped_out = dir.path().join("wrapped");
    let run = studentsim(&[
        "score",
        "--real",
        EXAMPLES,
        "--sim",
        copy.to_str().unwrap(),
        "--pep8",
        "wrapped",
        "--out",
        wrapped_out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let wrapped: Value =
        serde_json::from_str(&std::fs::read_to_string(wrapped_out.join("metrics.json")).unwrap()).unwrap();
    for (table, name) in [("table2", "real"), ("table3", "real"), ("table3", "copy-last")] {
        let (plain, swapped) = (set(&metrics[table], name), set(&wrapped[table], name));
        assert_eq!(plain["pep8_other"], swapped["pep8"], "{table} {name}");
        assert_eq!(plain["pep8"], swapped["pep8_other"], "{table} {name}");
        assert_ne!(plain["pep8"], plain["pep8_other"], "{table} {name}: the two counts differ on these programs");
    }
    assert_eq!(
        set(&metrics["table3"], "copy-last")["pep8_other_mae"],
        set(&wrapped["table3"], "copy-last")["pep8_mae"]
    );

    // --sets keeps the figures to the real set and the sets named; the tables keep every set.
    let some_out = dir.path().join("some");
    let run = studentsim(&[
        "score",
        "--real",
        EXAMPLES,
        "--sim",
        own.to_str().unwrap(),
        "--sim",
        copy.to_str().unwrap(),
        "--sets",
        "copy-last",
        "--out",
        some_out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    for plot in ["error_types.svg", "progress.svg", "embeddings_pca.svg", "attempts.svg"] {
        let svg = std::fs::read_to_string(some_out.join(plot)).unwrap();
        let shown = svg_texts(&svg);
        assert!(shown.contains(&"copy-last") && shown.contains(&"real"), "{plot} shows copy-last and real: {shown:?}");
        assert!(!shown.contains(&"self"), "{plot} leaves out the set --sets did not name: {shown:?}");
        let all = std::fs::read_to_string(out.join(plot)).unwrap();
        assert!(svg_texts(&all).contains(&"self"), "{plot} without --sets shows every set");
    }
    let some: Value = serde_json::from_str(&std::fs::read_to_string(some_out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(some["sets"].as_array().unwrap().len(), 3, "the tables keep every set");
}

/// The texts of an SVG's `<text>` elements (the legend's set names among them), trimmed.
fn svg_texts(svg: &str) -> Vec<&str> {
    svg.split("<text").skip(1).filter_map(|t| Some(t.split_once('>')?.1.split_once("</text>")?.0.trim())).collect()
}

/// Exit code 2, one line naming `needles`, no report folder.
fn refused(args: &[&str], out: &Path, needles: &[&str]) {
    common::bad_input(&studentsim(args), needles, Some(out));
}

#[test]
fn bad_input_gets_one_line_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let o = out.to_str().unwrap();
    let rows = example_rows();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();

    refused(
        &["score", "--real", EXAMPLES, "--sim", EXAMPLES, "--sets", "nobody", "--out", o],
        &out,
        &["--sets", "\"nobody\""],
    );

    std::fs::write(path("empty.jsonl"), "\n").unwrap();
    refused(
        &["score", "--real", EXAMPLES, "--sim", &path("empty.jsonl"), "--out", o],
        &out,
        &["empty.jsonl", "no rows"],
    );

    let mut other = rows[..3].to_vec();
    other[2]["problem"] = "fizzbuzz-2".into();
    write_rows(&dir.path().join("other.jsonl"), &other);
    refused(
        &["score", "--real", EXAMPLES, "--sim", &path("other.jsonl"), "--out", o],
        &out,
        &["other.jsonl:3", "fizzbuzz-2", "not in the real set"],
    );

    let mut missing = rows[..2].to_vec();
    missing[1].as_object_mut().unwrap().remove("code");
    write_rows(&dir.path().join("missing.jsonl"), &missing);
    refused(
        &["score", "--real", EXAMPLES, "--sim", &path("missing.jsonl"), "--out", o],
        &out,
        &["missing.jsonl:2", "code"],
    );

    let mut wrong = rows[..2].to_vec();
    wrong[0]["attempt"] = "one".into();
    write_rows(&dir.path().join("wrong.jsonl"), &wrong);
    refused(
        &["score", "--real", &path("wrong.jsonl"), "--sim", EXAMPLES, "--out", o],
        &out,
        &["wrong.jsonl:1", "attempt"],
    );

    let mut unknown = rows[..2].to_vec();
    unknown[1]["problem"] = "no-such-problem".into();
    write_rows(&dir.path().join("unknown.jsonl"), &unknown);
    refused(
        &["score", "--real", &path("unknown.jsonl"), "--sim", &path("unknown.jsonl"), "--out", o],
        &out,
        &["unknown.jsonl:2", "no-such-problem", "registry"],
    );
}
