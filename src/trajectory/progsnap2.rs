//! ProgSnap2 (the CSEDM community's standard for programming-process logs) in and out.
//!
//! In: `MainTable.csv` (EventType, SubjectID, ProblemID or AssignmentID, CodeStateID, ServerTimestamp, Order, and
//! optionally Score and X-Label) with the code in `CodeStates/CodeStates.csv` (CodeStateID, Code) or in
//! `CodeStates/<CodeStateID>/` folders holding one file. `Submit` and `Run.*` events become submissions.
//! Out: the same layout, one `Submit` event per row, plus `DatasetMetadata.csv`.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Anonymizer, REAL, Submission};
use crate::BadInput;
use crate::grade::Label;
use crate::jsonl::write_atomically;

const MAIN_TABLE: &str = "MainTable.csv";
const CODE_STATES: &str = "CodeStates";

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

#[derive(Debug, Serialize)]
struct ExportEvent<'a> {
    #[serde(rename = "EventID")]
    event_id: usize,
    #[serde(rename = "Order")]
    order: usize,
    #[serde(rename = "SubjectID")]
    subject: &'a str,
    #[serde(rename = "ToolInstances")]
    tool: &'a str,
    #[serde(rename = "CodeStateID")]
    code_state: usize,
    #[serde(rename = "EventType")]
    event_type: &'a str,
    #[serde(rename = "ServerTimestamp")]
    timestamp: String,
    #[serde(rename = "ServerTimezone")]
    timezone: &'a str,
    #[serde(rename = "ProblemID")]
    problem: &'a str,
    #[serde(rename = "Score")]
    score: Option<f64>,
    #[serde(rename = "X-Label")]
    label: Option<&'a str>,
    #[serde(rename = "X-Source")]
    source: &'a str,
}

/// Read a ProgSnap2 folder as submissions (ungraded unless the table carries Score and X-Label).
pub fn import(dir: &Path, anonymizer: Option<&Anonymizer>) -> Result<Vec<Submission>> {
    let table = dir.join(MAIN_TABLE);
    let code_of = code_states(&dir.join(CODE_STATES))?;
    let mut reader = csv::Reader::from_path(&table).map_err(|e| BadInput(format!("{}: {e}", table.display())))?;
    let mut events = Vec::new();
    for (index, record) in reader.deserialize::<Event>().enumerate() {
        // Line 1 is the header.
        let at = |what: String| BadInput(format!("{}:{}: {what}", table.display(), index + 2));
        let event = record.map_err(|e| at(e.to_string()))?;
        if event.event_type != "Submit" && !event.event_type.starts_with("Run") {
            continue;
        }
        let problem = event.problem.clone().or(event.assignment.clone()).filter(|p| !p.is_empty());
        let problem = problem.ok_or_else(|| at("no ProblemID or AssignmentID".into()))?;
        let code = code_of.get(&event.code_state).ok_or_else(|| at(format!("unknown CodeStateID {}", event.code_state)))?;
        let time = parse_timestamp(&event.timestamp).map_err(|e| at(format!("ServerTimestamp {:?}: {e}", event.timestamp)))?;
        let label = match event.label.as_deref().filter(|l| !l.is_empty()) {
            None => None,
            Some(l) => Some(serde_json::from_value::<Label>(l.into()).map_err(|_| at(format!("unknown X-Label {l:?}")))?),
        };
        events.push((event.order, Submission {
            student: anonymizer.map_or_else(|| event.subject.clone(), |a| a.pseudonym(&event.subject)),
            problem,
            time,
            attempt: 0,
            code: code.clone(),
            label,
            pass_rate: event.score,
            source: REAL.to_owned(),
            platform_correct: None,
            generated: None,
            extra: Default::default(),
        }));
    }
    events.sort_by(|a, b| (a.1.time, a.0).cmp(&(b.1.time, b.0)));
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
    write_atomically(&dir.join(MAIN_TABLE), |out| {
        let mut w = csv::Writer::from_writer(out);
        for (n, &i) in order.iter().enumerate() {
            let r = &rows[i];
            w.serialize(ExportEvent {
                event_id: n + 1,
                order: n + 1,
                subject: &r.student,
                tool: "studentsim",
                code_state: i + 1,
                event_type: "Submit",
                timestamp: r.time.to_string(),
                timezone: "0",
                problem: &r.problem,
                score: r.pass_rate,
                label: r.label.map(Label::as_str),
                source: &r.source,
            })?;
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
        let Some(file) = std::fs::read_dir(&folder).ok().and_then(|mut f| f.next()).and_then(|f| f.ok()) else { continue };
        let code = std::fs::read_to_string(file.path()).with_context(|| format!("reading {}", file.path().display()))?;
        states.insert(id, code);
    }
    Ok(states)
}

/// RFC 3339, or a zone-less `YYYY-MM-DD HH:MM:SS[.fff]` taken as UTC.
fn parse_timestamp(text: &str) -> Result<Timestamp, jiff::Error> {
    text.parse::<Timestamp>()
        .or_else(|_| jiff::tz::TimeZone::UTC.to_timestamp(text.parse::<jiff::civil::DateTime>()?))
}
