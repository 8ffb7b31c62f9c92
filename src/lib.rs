//! studentsim: grade novice Python code in a WebAssembly sandbox and simulate how students struggle.
//!
//! Data flows `problems` → `sandbox` → `grade` → ... → `cli`; see `docs/ARCHITECTURE.md`.

pub mod grade;
pub mod sandbox;
