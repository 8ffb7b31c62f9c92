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

/// `bytes` as lowercase hexadecimal (digests in file names, manifests and cache keys).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The sha256 of `bytes`, in hexadecimal.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest as _, Sha256};
    hex(&Sha256::digest(bytes))
}

/// A user's input is wrong: one line naming what and where (file and line). The CLI exits with code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

#[cfg(test)]
mod module_order {
    //! The module order of `docs/ARCHITECTURE.md`, checked on the source: a module names only the modules to its
    //! left (and the bottom ones), the bottom ones name none, and the "knows nothing about" pairs hold. One crate
    //! with this test instead of a workspace whose crate graph would enforce it (see the architecture document).

    use std::path::{Path, PathBuf};

    /// The data flow, left to right.
    const ORDER: [&str; 9] =
        ["problems", "sandbox", "grade", "metrics", "trajectory", "generate", "rollout", "score", "cli"];
    /// Below every module: they name none of `ORDER`.
    const BOTTOM: [&str; 3] = ["text", "records", "jsonl"];
    /// Left of it, but kept apart: (module, what it must not name).
    const KNOWS_NOTHING_ABOUT: [(&str, &str); 2] = [("generate", "sandbox"), ("score", "sandbox")];

    fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path).unwrap().map(|e| e.unwrap().path()).collect();
            entries.sort();
            entries.iter().for_each(|p| rust_files(p, out));
        } else if path.is_file() && path.extension().is_some_and(|e| e == "rs") {
            out.push(path.to_path_buf());
        }
    }

    /// The top-level modules a file names through `crate::`, outside comments: `crate::grade::X` and each item of
    /// a group, `crate::{grade::X, jsonl}`, over as many lines as the group spans.
    fn named_modules(text: &str) -> Vec<String> {
        let code: String =
            text.lines().filter(|line| !line.trim_start().starts_with("//")).map(|line| format!("{line}\n")).collect();
        let mut found = Vec::new();
        for (at, _) in code.match_indices("crate::") {
            let rest = &code[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let body = &group[..group.find('}').unwrap_or(group.len())];
                found.extend(body.split(',').map(|item| first_segment(item.trim())));
            } else {
                found.push(first_segment(rest));
            }
        }
        found.retain(|name| !name.is_empty());
        found
    }

    fn first_segment(path: &str) -> String {
        path.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
    }

    #[test]
    fn each_module_names_only_the_ones_to_its_left() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut broken = Vec::new();
        for module in ORDER.iter().chain(&BOTTOM) {
            let mut files = Vec::new();
            rust_files(&src.join(module), &mut files);
            rust_files(&src.join(format!("{module}.rs")), &mut files);
            assert!(!files.is_empty(), "no source for module `{module}`");
            let own = ORDER.iter().position(|m| m == module);
            for file in files {
                for named in named_modules(&std::fs::read_to_string(&file).unwrap()) {
                    let Some(theirs) = ORDER.iter().position(|m| *m == named) else { continue };
                    let allowed = own.is_some_and(|own| theirs <= own)
                        && !KNOWS_NOTHING_ABOUT.contains(&(*module, named.as_str()));
                    if !allowed {
                        broken.push(format!("{} names crate::{named}", file.strip_prefix(&src).unwrap().display()));
                    }
                }
            }
        }
        broken.dedup();
        assert!(broken.is_empty(), "module order broken (docs/ARCHITECTURE.md):\n{}", broken.join("\n"));
    }

    #[test]
    fn the_reader_sees_groups_and_skips_comments() {
        let text =
            "use crate::{BadInput,\n    grade::Label};\n// crate::cli in a comment\nlet x = crate::score::f();\n";
        assert_eq!(named_modules(text), ["BadInput", "grade", "score"]);
    }
}
