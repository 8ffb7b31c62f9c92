//! Every integration test in one binary: one link instead of one per file, and one harness that runs the tests
//! of all files side by side (cargo runs test binaries one after another, so a file with one long test left the
//! other core idle). Each file is a module; `common` is the shared set-up. tests/host_limits.rs is a binary of its
//! own (Cargo.toml says why). Run one file's tests with
//! `cargo test --test integration FILE::` (e.g. `cargo test --test integration newcaledonia::`).

mod common;

mod ast_parity;
mod cli;
mod crash_safety;
mod embed;
mod gradescope;
mod hostile;
mod installed;
mod labels;
mod newcaledonia;
mod openai;
mod pep8;
mod pep8_native;
mod pep8_snapshots;
mod progsnap2;
mod qwen;
mod qwen_gguf;
mod qwen_tokenizer;
mod refactory;
mod report_browser;
mod reproducible_build;
mod rollout;
mod score;
mod serve;
mod sft;
mod shards;
mod style_score;
mod train;
