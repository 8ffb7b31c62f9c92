//! Grades already run, kept for the rest of a run: a rollout grades the same code again and again (copy-last
//! resubmits the last attempt, the reference is one program per problem, the edit model's candidates repeat), and a
//! leaderboard rolls the same generators out in five modes on two splits. A grade is a function of the code, the
//! tests and the limits (the guest's clocks and randomness are fixed; only a wall-clock limit reached under load
//! could end otherwise), so a remembered record is the record a second grade would give.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{GradeLimits, GradeRecord, Tests};

/// The most record bytes kept (their JSON size, which a record's text dominates): a memo that fills up starts over,
/// so its memory stays bounded whatever the submissions print. Thousands of typical records fit.
const CAPACITY_BYTES: usize = 64 << 20;

/// Records by [`key`]; share one behind an `Arc` between the graders of one run ([`super::Grader::remembering`]).
#[derive(Debug, Default)]
pub struct GradeMemo {
    records: Mutex<Records>,
}

#[derive(Debug, Default)]
struct Records {
    by_key: HashMap<[u8; 32], GradeRecord>,
    bytes: usize,
}

impl GradeMemo {
    pub(super) fn get(&self, key: &[u8; 32]) -> Option<GradeRecord> {
        self.records.lock().expect("no panic while holding the lock").by_key.get(key).cloned()
    }

    pub(super) fn insert(&self, key: [u8; 32], record: GradeRecord) {
        let size = json_size(&record);
        let mut records = self.records.lock().expect("no panic while holding the lock");
        if records.bytes + size > CAPACITY_BYTES {
            *records = Records::default();
        }
        records.bytes += size;
        records.by_key.insert(key, record);
    }

    /// How many records it holds.
    pub fn len(&self) -> usize {
        self.records.lock().expect("no panic while holding the lock").by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The length of `record` as JSON, counted without writing it anywhere.
fn json_size(record: &GradeRecord) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // a record always serializes (plain strings and numbers); were it not to, it would count as what was written
    let _ = serde_json::to_writer(&mut count, record);
    count.0
}

/// What a grade's record depends on: the limits that can end a call, the fixed code, the submission and the tests
/// (their examples, scoring, comparison and limit; their compiled form follows from the examples).
pub(super) fn key(limits: &GradeLimits, fixed: &str, submission: &str, tests: &Tests) -> [u8; 32] {
    let mut hash = Sha256::new();
    let mut text = |s: &str| {
        hash.update((s.len() as u64).to_le_bytes());
        hash.update(s.as_bytes());
    };
    let sandbox = &limits.sandbox;
    let nanos = |d: Duration| d.as_nanos().to_string();
    text(&nanos(sandbox.per_call));
    text(&nanos(sandbox.per_session));
    text(&sandbox.memory_bytes.to_string());
    text(&format!("{:?}", sandbox.fuel));
    text(&sandbox.output_bytes.to_string());
    text(&format!("{} {}", limits.reveal_hidden, tests.reveal_hidden));
    text(&format!("{:?} {:?}", tests.compare, tests.example_limit));
    for (group, scoring) in tests.groups.iter().zip(&tests.scoring) {
        text(&group.name);
        text(&format!("{} {} {}", scoring.hidden, scoring.points_each, group.examples.len()));
        for example in &group.examples {
            text(&example.source);
            text(&example.want);
            text(&format!("{:?} {}", example.exc_msg, example.lineno));
        }
    }
    text(fixed);
    text(submission);
    hash.finalize().into()
}
