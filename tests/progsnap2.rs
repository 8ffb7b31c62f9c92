//! ProgSnap2 export → import round trip, the folder layout of code states, and bad tables.

use studentsim::grade::Label;
use studentsim::trajectory::{Source, Submission, progsnap2};

fn rows() -> Vec<Submission> {
    let codes = ["def f(x):\n    return x, \"a,b\"\n", "print('é\\n')\r\n", "", "x = 1\n\n\n# \"quoted\", commas"];
    let mut rows = Vec::new();
    for (i, code) in codes.iter().enumerate() {
        for student in ["s1", "s2"] {
            rows.push(Submission {
                student: student.into(),
                problem: format!("p{}", i % 2),
                // Two submissions share a timestamp: attempt order must survive.
                time: format!("2021-05-0{}T10:00:00Z", 1 + i / 2).parse().unwrap(),
                attempt: 0,
                code: (*code).into(),
                label: [Some(Label::NoError), Some(Label::Logical), None, Some(Label::Compile)][i],
                pass_rate: [Some(1.0), Some(7.0 / 30.0), None, Some(0.0)][i],
                source: Source::Real,
                platform_correct: None,
                generated: None,
                extra: Default::default(),
            });
        }
    }
    // A user's own fields, on some rows only, with values a CSV cell could confuse: a string that reads as a
    // number, one with quotes, an empty one, commas and a newline, and non-string values.
    let extras = [
        serde_json::json!({"id": "row-0", "n": 7, "looks_numeric": "123"}),
        serde_json::json!({"quoted": "\"x\"", "empty": "", "cell": "a,b\nc"}),
        serde_json::json!({"obj": {"a": [1, null]}, "flag": false, "none": null}),
    ];
    for (i, row) in rows.iter_mut().enumerate().filter(|(i, _)| i % 3 != 2) {
        row.extra = extras[i % 3].as_object().unwrap().clone();
        row.extra.insert("index".into(), serde_json::json!(i));
    }
    rows[2].extra = extras[2].as_object().unwrap().clone();
    // Number attempts per stream in time order, as an import would.
    let mut seen = std::collections::HashMap::new();
    for r in &mut rows {
        let n = seen.entry((r.student.clone(), r.problem.clone())).or_insert(0);
        *n += 1;
        r.attempt = *n;
    }
    rows
}

#[test]
fn export_then_import_gives_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let original = rows();
    progsnap2::export(&original, dir.path()).unwrap();
    assert!(dir.path().join("DatasetMetadata.csv").is_file());
    let mut back = progsnap2::import(dir.path(), None).unwrap();
    let key = |r: &Submission| (r.student.clone(), r.problem.clone(), r.attempt);
    let mut expected = original.clone();
    expected.sort_by_key(key);
    back.sort_by_key(key);
    assert_eq!(back, expected);
}

#[test]
fn code_state_folders_and_assignment_ids_are_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("MainTable.csv"),
        "EventID,SubjectID,AssignmentID,CodeStateID,EventType,ServerTimestamp,Order\n\
         1,u1,hw1,c1,Run.Program,2021-01-01 10:00:00,1\n\
         2,u1,hw1,c2,Submit,2021-01-01 10:05:00,2\n\
         3,u1,hw1,c2,File.Edit,2021-01-01 10:06:00,3\n",
    )
    .unwrap();
    for (id, code) in [("c1", "x = 1\n"), ("c2", "x = 2\n")] {
        std::fs::create_dir_all(dir.path().join("CodeStates").join(id)).unwrap();
        std::fs::write(dir.path().join("CodeStates").join(id).join("main.py"), code).unwrap();
    }
    let rows = progsnap2::import(dir.path(), None).unwrap();
    assert_eq!(rows.len(), 2, "File.Edit is not a submission");
    assert_eq!((rows[1].attempt, rows[1].code.as_str(), rows[1].problem.as_str()), (2, "x = 2\n", "hw1"));
    assert_eq!(rows[0].time.to_string(), "2021-01-01T10:00:00Z");

    std::fs::write(
        dir.path().join("MainTable.csv"),
        "EventID,SubjectID,ProblemID,CodeStateID,EventType,ServerTimestamp\n1,u1,p,c1,Submit,2021-01-01T10:00:00Z\n2,u1,p,c9,Submit,2021-01-01T10:00:00Z\n",
    )
    .unwrap();
    let err = progsnap2::import(dir.path(), None).unwrap_err().to_string();
    assert!(err.ends_with("MainTable.csv:3: unknown CodeStateID c9"), "{err}");
}
