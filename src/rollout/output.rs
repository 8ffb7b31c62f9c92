//! Rollout output: JSON Lines appended and flushed one row at a time, so a killed run loses at most the rows in
//! flight. Reopening keeps every complete row (and cuts off a torn last line), and says which rows are done, so a
//! rerun with the same arguments skips them instead of writing them twice.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};

use crate::BadInput;
use crate::trajectory::Submission;

/// Identifies a row of a rollout: (student, problem, attempt).
pub type RowKey = (String, String, u32);

pub fn key(row: &Submission) -> RowKey {
    (row.student.clone(), row.problem.clone(), row.attempt)
}

pub struct ResumableOutput {
    path: PathBuf,
    file: Mutex<File>,
    done: HashSet<RowKey>,
    /// The rows found on opening, in file order.
    earlier: Vec<Submission>,
}

impl ResumableOutput {
    /// Open `path` for appending, creating it (and its folder) if needed.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if complete < bytes.len() {
            // A torn last line from a killed run: its row was in flight and will be redone.
            file.set_len(complete as u64)?;
            file.seek(SeekFrom::End(0))?;
        }
        let mut done = HashSet::new();
        let mut earlier = Vec::new();
        for (index, line) in bytes[..complete].split(|&b| b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let row: Submission = serde_json::from_slice(line).map_err(|e| {
                BadInput(format!(
                    "{}:{}: not a rollout row ({e}); remove the file or pass another --out",
                    path.display(),
                    index + 1
                ))
            })?;
            done.insert(key(&row));
            earlier.push(row);
        }
        Ok(Self { path: path.to_owned(), file: Mutex::new(file), done, earlier })
    }

    pub fn is_done(&self, key: &RowKey) -> bool {
        self.done.contains(key)
    }

    pub fn done(&self) -> usize {
        self.done.len()
    }

    /// The rows an earlier run wrote for one (student, problem), by attempt.
    pub fn earlier_rows(&self, student: &str, problem: &str) -> Vec<Submission> {
        let mut rows: Vec<Submission> =
            self.earlier.iter().filter(|r| r.student == student && r.problem == problem).cloned().collect();
        rows.sort_by_key(|r| r.attempt);
        rows
    }

    /// Append one row and flush it to the file.
    pub fn append(&self, row: &Submission) -> Result<()> {
        let mut line = serde_json::to_vec(row)?;
        line.push(b'\n');
        let mut file = self.file.lock().expect("no panic while writing");
        file.write_all(&line).and_then(|()| file.flush()).with_context(|| format!("writing {}", self.path.display()))
    }
}

/// The rows of a finished rollout file (`bytes`), sorted by (student, problem, attempt): rows are appended as
/// they finish, so this is the one order that does not depend on `--jobs` or on how the work was shared out.
/// A key that appears twice is an error (two runs wrote into one file).
pub fn lines_in_key_order<'b>(bytes: &'b [u8], path: &Path) -> Result<Vec<(RowKey, &'b [u8])>, BadInput> {
    #[derive(serde::Deserialize)]
    struct KeyOnly {
        student: String,
        problem: String,
        attempt: u32,
    }
    let mut lines = Vec::new();
    for (index, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let row: KeyOnly = serde_json::from_slice(line)
            .map_err(|e| BadInput(format!("{}:{}: not a rollout row ({e})", path.display(), index + 1)))?;
        lines.push(((row.student, row.problem, row.attempt), line));
    }
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(pair) = lines.windows(2).find(|w| w[0].0 == w[1].0) {
        let (student, problem, attempt) = &pair[0].0;
        return Err(BadInput(format!(
            "{}: two rows for student {student:?}, problem {problem:?}, attempt {attempt}",
            path.display()
        )));
    }
    Ok(lines)
}
