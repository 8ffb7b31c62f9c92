//! studentsim: grade novice Python code in a WebAssembly sandbox and simulate how students struggle.
//!
//! Data flows `problems` → `sandbox` → `grade` → `metrics` → `trajectory` → `generate` → `rollout` → `score`,
//! and `cli` drives them; the record types they share live in `records`, below them all; see
//! `docs/ARCHITECTURE.md`.

pub mod cli;
pub mod generate;
pub mod grade;
pub mod jsonl;
pub mod metrics;
pub mod problems;
pub mod records;
pub mod rollout;
pub mod sandbox;
pub mod score;
pub mod text;
pub mod trajectory;

/// A user's input is wrong: one line naming what and where (file and line). The CLI exits with code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);
