//! Student trajectories: one row per submission; a stream is one (student, problem), ordered by time.
//!
//! Rows are JSON Lines in the native schema ([`Submission`]). Student ids are anonymized at import with a salted
//! hash, so raw ids never reach a file studentsim writes.

pub mod newcaledonia;
pub mod progsnap2;
pub mod sample;
pub mod split;
pub mod views;

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::{BadInput, jsonl};

pub use crate::records::{Provenance, Source, Submission};

/// Unknown fields of `rows` that look like misspelt known ones (the same first letter, at most two edits away:
/// `lable`, `atempt`, but not a `course` column), each once, with the known field meant.
fn misspelt_fields<'a>(rows: impl IntoIterator<Item = &'a Submission>) -> Vec<(String, &'static str)> {
    let mut seen = std::collections::BTreeSet::new();
    let mut found = Vec::new();
    for row in rows {
        for name in row.extra.keys() {
            if seen.insert(name.clone())
                && let Some(&known) = Submission::FIELDS.iter().find(|k| {
                    k.get(..1) == name.get(..1) && name.len() > 2 && crate::metrics::edit_distance(k, name) <= 2
                })
            {
                found.push((name.clone(), known));
            }
        }
    }
    found
}

/// Warn on stderr, once per field, about unknown fields of `path`'s rows that look misspelt (they are kept as
/// unknown fields, so the known field they meant is missing or default).
fn warn_misspelt<'a>(path: &Path, rows: impl IntoIterator<Item = &'a Submission>) {
    for (name, known) in misspelt_fields(rows) {
        let name = crate::text::for_terminal(&name);
        eprintln!("warning: {}: unknown field `{name}` kept as is; did you mean `{known}`?", path.display());
    }
}

/// Read trajectory rows with their line numbers; errors name the file and line, and fields that look misspelt
/// get a warning.
pub fn read_numbered(path: &Path) -> Result<Vec<(usize, Submission)>, BadInput> {
    let rows: Vec<(usize, Submission)> = jsonl::read(path)?;
    warn_misspelt(path, rows.iter().map(|(_, row)| row));
    Ok(rows)
}

/// Read trajectory rows, as [`read_numbered`] without the line numbers.
pub fn read(path: &Path) -> Result<Vec<Submission>, BadInput> {
    Ok(read_numbered(path)?.into_iter().map(|(_, row)| row).collect())
}

/// The streams of `rows`: (student, problem) → row indices ordered by (time, attempt).
pub fn streams(rows: &[Submission]) -> BTreeMap<(&str, &str), Vec<usize>> {
    let mut streams: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        streams.entry((row.student.as_str(), row.problem.as_str())).or_default().push(i);
    }
    for indices in streams.values_mut() {
        indices.sort_by_key(|&i| (rows[i].time, rows[i].attempt));
    }
    streams
}

/// Turns raw student ids into stable pseudonyms: `s` + 16 hex digits of sha256(salt, 0, id).
#[derive(Clone)]
pub struct Anonymizer {
    salt: Vec<u8>,
}

impl Anonymizer {
    /// A salt shorter than 16 bytes is refused: short salts make pseudonyms guessable.
    pub fn new(salt: Vec<u8>) -> Result<Self, BadInput> {
        if salt.len() < 16 {
            return Err(BadInput(format!("the anonymization salt is {} bytes; use at least 16", salt.len())));
        }
        Ok(Self { salt })
    }

    pub fn pseudonym(&self, raw: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(&self.salt);
        hasher.update([0]);
        hasher.update(raw.as_bytes());
        format!("s{}", &crate::hex(&hasher.finalize())[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_salted_and_hide_the_id() {
        let a = Anonymizer::new(b"0123456789abcdef".to_vec()).unwrap();
        let b = Anonymizer::new(b"0123456789abcdeX".to_vec()).unwrap();
        assert_eq!(a.pseudonym("userdId_1"), a.pseudonym("userdId_1"));
        assert_ne!(a.pseudonym("userdId_1"), a.pseudonym("userdId_2"));
        assert_ne!(a.pseudonym("userdId_1"), b.pseudonym("userdId_1"));
        assert!(!a.pseudonym("userdId_1").contains("userdId"));
        assert!(Anonymizer::new(b"short".to_vec()).is_err());
    }

    #[test]
    fn rows_round_trip_and_default_to_real() {
        let line = r#"{"student":"s1","problem":"p","time":"2020-03-12T07:48:50Z","attempt":1,"code":"x = 1"}"#;
        let row: Submission = serde_json::from_str(line).unwrap();
        assert_eq!(row.source, Source::Real);
        let again: Submission = serde_json::from_str(&serde_json::to_string(&row).unwrap()).unwrap();
        assert_eq!(again, row);
        assert!(serde_json::from_str::<Submission>(&line.replace("\"attempt\":1", "\"attempt\":\"1\"")).is_err());
    }
}
