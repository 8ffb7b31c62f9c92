//! `studentsim export sft` on the bundled example streams: the study's fine-tuned layout, every stage and next
//! step, with and without context.

use crate::common;

use common::{EXAMPLES, example_rows, example_streams, json_lines, studentsim};

#[test]
fn sft_rows_pair_the_fine_tuned_prompt_with_the_real_code() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sft.jsonl");
    let run = studentsim(&["export", "sft", "--input", EXAMPLES, "--out", out.to_str().unwrap()]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let (real, streams) = (example_rows(), example_streams());
    let rows = json_lines(&out);

    let count = |experiment: u64, k: Option<u64>, context: bool| {
        rows.iter().filter(|r| r["experiment"] == experiment && r["k"].as_u64() == k && r["context"] == context).count()
    };
    assert_eq!(count(1, None, false), 3 * streams, "three stages per stream");
    assert_eq!(count(2, Some(1), false), real.len() - streams, "one next step per row with a predecessor");
    assert_eq!(count(2, Some(3), false), real.len() - streams);
    assert!(
        count(1, None, true) > 0 && count(1, None, true) < count(1, None, false),
        "context only where there is an earlier problem"
    );

    for row in &rows {
        let (prompt, completion) = (row["prompt"].as_str().unwrap(), row["completion"].as_str().unwrap());
        let source = real
            .iter()
            .find(|r| {
                r["student"] == row["student"] && r["problem"] == row["problem"] && r["attempt"] == row["attempt"]
            })
            .unwrap();
        assert_eq!(completion, format!("<code>{}</code>", source["code"].as_str().unwrap().trim()));
        assert!(
            prompt.starts_with(if row["context"] == true {
                "PAST PROBLEM SUBMISSIONS:\n"
            } else {
                "PROBLEM INSTRUCTIONS:\n"
            }),
            "{prompt}"
        );
        match (row["experiment"].as_u64(), row["stage"].as_str()) {
            (Some(1), Some("first")) => assert!(prompt.ends_with("\n\nSUBMISSION Q0:\n")),
            (Some(1), Some("last")) => assert!(prompt.ends_with("\n\nSUBMISSION Q2:\n")),
            (Some(2), _) => assert!(prompt.contains("\n\nSUBMISSIONS:\n<code>") && prompt.ends_with("</code>\n")),
            _ => {}
        }
    }
}
