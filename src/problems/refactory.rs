//! Import of the Refactory dataset (Hu et al., ASE 2019; LGPL-3.0): five problems whose I/O pairs become
//! doctests, and the labelled student programs that go with them.
//!
//! Layout: `question_N/description.txt` (`Task: <title>` then the statement), `ans/input_NNN.txt` (one call
//! expression) and `ans/output_NNN.txt` (the expected value's repr), `code/reference/reference.py`,
//! `code/global.py` (given code, question 2 only) and `code/{correct,wrong,fail}/*.py`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{Problem, top_level_functions};
use crate::BadInput;
use crate::records::Compare;

/// Whether the dataset's authors marked a program correct or wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Correct,
    Wrong,
    Fail,
}

impl Verdict {
    pub fn folder(self) -> &'static str {
        match self {
            Verdict::Correct => "correct",
            Verdict::Wrong => "wrong",
            Verdict::Fail => "fail",
        }
    }
}

/// One student program of the dataset.
#[derive(Debug, Clone)]
pub struct Program {
    pub problem_id: String,
    pub path: PathBuf,
    pub verdict: Verdict,
}

/// The `question_N` folders of `dir`, in order of N.
fn questions(dir: &Path) -> Result<Vec<(u32, PathBuf)>> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| BadInput(format!("{}: not a Refactory folder: {e}", dir.display())))?;
    let mut found = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let number = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_prefix("question_"));
        if let Some(n) = number.and_then(|n| n.parse().ok()) {
            found.push((n, path));
        }
    }
    if found.is_empty() {
        return Err(
            BadInput(format!("{}: no question_N folders (expected the Refactory dataset)", dir.display())).into()
        );
    }
    found.sort();
    Ok(found)
}

pub fn problem_id(question: u32) -> String {
    format!("refactory-q{question}")
}

/// The five problems, with one doctest per I/O pair.
pub fn import(dir: &Path) -> Result<Vec<Problem>> {
    questions(dir)?.into_iter().map(|(n, path)| import_question(n, &path)).collect()
}

/// Every program of `verdicts`, problem by problem, in file-name order.
pub fn programs(dir: &Path, verdicts: &[Verdict]) -> Result<Vec<Program>> {
    let mut programs = Vec::new();
    for (n, path) in questions(dir)? {
        for &verdict in verdicts {
            let folder = path.join("code").join(verdict.folder());
            let Ok(entries) = std::fs::read_dir(&folder) else { continue };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "py"))
                .collect();
            files.sort();
            programs.extend(files.into_iter().map(|path| Program { problem_id: problem_id(n), path, verdict }));
        }
    }
    Ok(programs)
}

fn import_question(n: u32, dir: &Path) -> Result<Problem> {
    let read = |rel: &str| {
        let path = dir.join(rel);
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok::<_, anyhow::Error>(text.replace("\r\n", "\n"))
    };
    let description = read("description.txt")?;
    let mut lines = description.lines();
    let title = lines.next().unwrap_or("").trim().trim_start_matches("Task:").trim().to_owned();
    let statement = lines.collect::<Vec<_>>().join("\n").trim().to_owned();
    let solution = read("code/reference/reference.py")?;
    let fixed = if dir.join("code/global.py").is_file() { read("code/global.py")? } else { String::new() };
    let fixed_defs = top_level_functions(&fixed);
    let defs: Vec<(String, String)> = top_level_functions(&solution)
        .into_iter()
        .filter(|(name, _)| !fixed_defs.iter().any(|(f, _)| f == name))
        .collect();
    if defs.is_empty() {
        return Err(BadInput(format!("{}: the reference solution defines no function", dir.display())).into());
    }

    // Each I/O pair goes into the docstring of the function it calls (the first one when it calls another).
    let mut examples: Vec<Vec<String>> = vec![Vec::new(); defs.len()];
    for (input, output) in io_pairs(&dir.join("ans"))? {
        let callee = input.split(|c: char| !(c.is_alphanumeric() || c == '_')).next().unwrap_or("");
        let slot = defs.iter().position(|(name, _)| name == callee).unwrap_or(0);
        examples[slot].push(doctest_example(&input, &output));
    }
    let statement = if statement.is_empty() { format!("Implement {}.", names(&defs)) } else { statement };
    let todo = defs
        .iter()
        .zip(&examples)
        .map(|((_, signature), examples)| stub(signature, &title, examples))
        .collect::<Vec<_>>()
        .join("\n\n");
    Ok(Problem {
        id: problem_id(n),
        title,
        statement,
        entry: defs.iter().map(|(name, _)| name.clone()).collect(),
        fixed,
        todo,
        solution,
        // The course graded return values; some of its "correct" programs print debugging lines.
        compare: Compare::Value,
        source: Some(format!("Refactory dataset (Hu et al., ASE 2019), question_{n}; LGPL-3.0")),
        limits: Default::default(),
        points: Default::default(),
        hidden: Default::default(),
    })
}

fn names(defs: &[(String, String)]) -> String {
    defs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
}

fn io_pairs(ans: &Path) -> Result<Vec<(String, String)>> {
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(ans)
        .with_context(|| format!("reading {}", ans.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("input_")))
        .collect();
    inputs.sort();
    inputs
        .into_iter()
        .map(|input| {
            let name = input.file_name().and_then(|n| n.to_str()).unwrap_or_default().replacen("input_", "output_", 1);
            let output = input.with_file_name(name);
            let read = |p: &Path| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()));
            Ok((read(&input)?.trim().to_owned(), read(&output)?.trim().to_owned()))
        })
        .collect()
}

fn doctest_example(input: &str, output: &str) -> String {
    let mut lines = input.lines();
    let mut text = format!(">>> {}", lines.next().unwrap_or(""));
    for line in lines {
        text.push_str(&format!("\n... {line}"));
    }
    if !output.is_empty() {
        text.push('\n');
        text.push_str(output);
    }
    text
}

fn stub(signature: &str, title: &str, examples: &[String]) -> String {
    let body: String = examples.iter().flat_map(|e| e.lines()).map(|l| format!("    {l}\n")).collect();
    // A raw docstring keeps backslashes in the I/O pairs as they are.
    let prefix = if body.contains('\\') { "r" } else { "" };
    format!("def {signature}:\n    {prefix}\"\"\"{title}.\n\n{body}    \"\"\"\n    \"*** YOUR CODE HERE ***\"\n")
}
