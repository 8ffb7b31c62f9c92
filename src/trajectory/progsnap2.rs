//! ProgSnap2 (the CSEDM community's standard for programming-process logs) in and out.
//!
//! In: `MainTable.csv` (EventType, SubjectID, ProblemID or AssignmentID, CodeStateID, ServerTimestamp, Order, and
//! optionally Score and X-Label) with the code in `CodeStates/CodeStates.csv` (CodeStateID, Code) or in
//! `CodeStates/<CodeStateID>/` folders holding one file. `Submit` and `Run.*` events become submissions.
//! Out: the same layout, one `Submit` event per row, plus `DatasetMetadata.csv`.
//!
//! A row's own fields ([`Submission::extra`]) travel as `X-Row-<name>` columns, both ways: a string as itself
//! unless it would read as another JSON value, anything else as JSON, so a round trip gives the same values.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use jiff::Timestamp;
use serde::Deserialize;

use super::{Anonymizer, Source, Submission};
use crate::BadInput;
use crate::grade::Label;
use crate::jsonl::write_atomically;

const MAIN_TABLE: &str = "MainTable.csv";
const CODE_STATES: &str = "CodeStates";
/// The prefix of the columns that hold a row's own fields.
const ROW_FIELD: &str = "X-Row-";

#[derive(Debug, Deserialize)]
struct Event {
    #[serde(rename = "EventType")]
    event_type: String,
    #[serde(rename = "SubjectID")]
    subject: String,
    #[serde(rename = "ProblemID", default)]
    problem: Option<String>,
    #[serde(rename = "AssignmentID", default)]
    assignment: Option<String>,
    #[serde(rename = "CodeStateID")]
    code_state: String,
    #[serde(rename = "ServerTimestamp")]
    timestamp: String,
    #[serde(rename = "Order", default)]
    order: Option<u64>,
    #[serde(rename = "Score", default)]
    score: Option<f64>,
    #[serde(rename = "X-Label", default)]
    label: Option<String>,
}

/// The main table's columns as written, before the `X-Row-` ones.
const EXPORT_COLUMNS: [&str; 12] = [
    "EventID",
    "Order",
    "SubjectID",
    "ToolInstances",
    "CodeStateID",
    "EventType",
    "ServerTimestamp",
    "ServerTimezone",
    "ProblemID",
    "Score",
    "X-Label",
    "X-Source",
];

/// A row field's cell: a string as itself unless it would read back as another JSON value (or is empty, which
/// stands for a row without the field), else JSON.
fn cell_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) if !s.is_empty() && serde_json::from_str::<serde_json::Value>(s).is_err() => {
            s.clone()
        }
        other => other.to_string(),
    }
}

/// A row field read back from its cell (the inverse of [`cell_text`]); none for an empty cell.
fn cell_value(cell: &str) -> Option<serde_json::Value> {
    (!cell.is_empty())
        .then(|| serde_json::from_str(cell).unwrap_or_else(|_| serde_json::Value::String(cell.to_owned())))
}

/// Read a ProgSnap2 folder as submissions (ungraded unless the table carries Score and X-Label).
pub fn import(dir: &Path, anonymizer: Option<&Anonymizer>) -> Result<Vec<Submission>> {
    let table = dir.join(MAIN_TABLE);
    let code_of = code_states(&dir.join(CODE_STATES))?;
    let mut reader = csv::Reader::from_path(&table).map_err(|e| BadInput(format!("{}: {e}", table.display())))?;
    let headers = reader.headers().map_err(|e| BadInput(format!("{}: {e}", table.display())))?.clone();
    let row_fields: Vec<(usize, &str)> =
        headers.iter().enumerate().filter_map(|(i, h)| Some((i, h.strip_prefix(ROW_FIELD)?))).collect();
    let mut events = Vec::new();
    for (index, record) in reader.records().enumerate() {
        // Line 1 is the header.
        let at = |what: String| BadInput(format!("{}:{}: {what}", table.display(), index + 2));
        let record = record.map_err(|e| at(e.to_string()))?;
        let event: Event = record.deserialize(Some(&headers)).map_err(|e| at(e.to_string()))?;
        let extra =
            row_fields.iter().filter_map(|&(i, name)| Some((name.to_owned(), cell_value(record.get(i)?)?))).collect();
        if event.event_type != "Submit" && !event.event_type.starts_with("Run") {
            continue;
        }
        let problem = event.problem.clone().or(event.assignment.clone()).filter(|p| !p.is_empty());
        let problem = problem.ok_or_else(|| at("no ProblemID or AssignmentID".into()))?;
        let code =
            code_of.get(&event.code_state).ok_or_else(|| at(format!("unknown CodeStateID {}", event.code_state)))?;
        let time =
            parse_timestamp(&event.timestamp).map_err(|e| at(format!("ServerTimestamp {:?}: {e}", event.timestamp)))?;
        let label = match event.label.as_deref().filter(|l| !l.is_empty()) {
            None => None,
            Some(l) => {
                Some(serde_json::from_value::<Label>(l.into()).map_err(|_| at(format!("unknown X-Label {l:?}")))?)
            }
        };
        events.push((
            event.order,
            Submission {
                student: anonymizer.map_or_else(|| event.subject.clone(), |a| a.pseudonym(&event.subject)),
                problem,
                time,
                attempt: 0,
                code: code.clone(),
                label,
                pass_rate: event.score,
                source: Source::Real,
                platform_correct: None,
                generated: None,
                extra,
            },
        ));
    }
    events.sort_by_key(|a| (a.1.time, a.0));
    let mut attempts: HashMap<(String, String), u32> = HashMap::new();
    Ok(events
        .into_iter()
        .map(|(_, mut s)| {
            let n = attempts.entry((s.student.clone(), s.problem.clone())).or_insert(0);
            *n += 1;
            s.attempt = *n;
            s
        })
        .collect())
}

/// Write `rows` as a ProgSnap2 folder (each file atomically).
pub fn export(rows: &[Submission], dir: &Path) -> Result<()> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| (rows[i].time, rows[i].student.clone(), rows[i].problem.clone(), rows[i].attempt));
    let mut names: Vec<&str> = rows.iter().flat_map(|r| r.extra.keys().map(String::as_str)).collect();
    names.sort_unstable();
    names.dedup();
    write_atomically(&dir.join(MAIN_TABLE), |out| {
        let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(out);
        let mut header: Vec<String> = EXPORT_COLUMNS.iter().map(|&c| c.to_owned()).collect();
        header.extend(names.iter().map(|n| format!("{ROW_FIELD}{n}")));
        w.write_record(&header)?;
        for (n, &i) in order.iter().enumerate() {
            let r = &rows[i];
            let mut record: Vec<String> = vec![
                (n + 1).to_string(),
                (n + 1).to_string(),
                r.student.clone(),
                "studentsim".into(),
                (i + 1).to_string(),
                "Submit".into(),
                r.time.to_string(),
                "0".into(),
                r.problem.clone(),
                r.pass_rate.map(|p| p.to_string()).unwrap_or_default(),
                r.label.map(Label::as_str).unwrap_or_default().to_owned(),
                r.source.name().to_owned(),
            ];
            record.extend(names.iter().map(|name| r.extra.get(*name).map(cell_text).unwrap_or_default()));
            w.write_record(&record)?;
        }
        w.flush()?;
        Ok(())
    })?;
    write_atomically(&dir.join(CODE_STATES).join("CodeStates.csv"), |out| {
        let mut w = csv::Writer::from_writer(out);
        w.write_record(["CodeStateID", "Code"])?;
        for (i, r) in rows.iter().enumerate() {
            w.write_record([(i + 1).to_string().as_str(), r.code.as_str()])?;
        }
        w.flush()?;
        Ok(())
    })?;
    write_atomically(&dir.join("DatasetMetadata.csv"), |out| {
        out.write_all(b"Property,Value\nVersion,6.0\nIsEventOrderingConsistent,true\nEventOrderScope,Global\nEventOrderScopeColumns,\nCodeStateRepresentation,Table\n")?;
        Ok(())
    })
}

/// CodeStateID → code, from `CodeStates.csv` or from one-file folders.
fn code_states(dir: &Path) -> Result<HashMap<String, String>> {
    let table = dir.join("CodeStates.csv");
    let mut states = HashMap::new();
    if table.is_file() {
        let mut reader = csv::Reader::from_path(&table).map_err(|e| BadInput(format!("{}: {e}", table.display())))?;
        for (index, record) in reader.deserialize::<(String, String)>().enumerate() {
            let (id, code) = record.map_err(|e| BadInput(format!("{}:{}: {e}", table.display(), index + 2)))?;
            states.insert(id, code);
        }
        return Ok(states);
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|e| BadInput(format!("{}: no CodeStates.csv and no code-state folders: {e}", dir.display())))?;
    for entry in entries {
        let folder = entry?.path();
        let Some(id) = folder.file_name().and_then(|n| n.to_str()).map(str::to_owned) else { continue };
        let Some(file) = std::fs::read_dir(&folder).ok().and_then(|mut f| f.next()).and_then(|f| f.ok()) else {
            continue;
        };
        let code =
            std::fs::read_to_string(file.path()).with_context(|| format!("reading {}", file.path().display()))?;
        states.insert(id, code);
    }
    Ok(states)
}

/// RFC 3339, or a zone-less `YYYY-MM-DD HH:MM:SS[.fff]` taken as UTC.
fn parse_timestamp(text: &str) -> Result<Timestamp, jiff::Error> {
    text.parse::<Timestamp>().or_else(|_| jiff::tz::TimeZone::UTC.to_timestamp(text.parse::<jiff::civil::DateTime>()?))
}
