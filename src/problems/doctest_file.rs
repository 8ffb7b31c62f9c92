//! `problems import doctest-file`: a homework file in the CS 61A style (functions whose docstrings hold doctests,
//! bodies left to write, `"*** YOUR CODE HERE ***"`) as one problem per top-level function or class with doctests.
//!
//! A problem's `todo` is its definition as the file has it; its `fixed` code is the rest of the module (imports,
//! constants, helpers) without the other problems' definitions; its statement is its docstring's prose; its
//! solution is the definition of the same name in the solution file, when one is given.

use std::collections::HashMap;
use std::path::Path;

use rustpython_parser::ast::{self, Ranged, Stmt};
use rustpython_parser::{Mode, parse};

use super::{Compare, Problem, ProblemLimits, is_valid_id};
use crate::BadInput;

/// The problems of one homework file, and one line for each thing that could not be carried over.
#[derive(Debug)]
pub struct Imported {
    pub problems: Vec<Problem>,
    pub unmapped: Vec<String>,
}

/// A top-level definition: its name, the byte span of its source lines, and its docstring.
pub(super) struct Definition {
    pub(super) name: String,
    pub(super) span: std::ops::Range<usize>,
    pub(super) docstring: Option<String>,
    has_examples: bool,
}

/// Import `homework` (the text of the file at `path`), with `solution` (text and path) when given; each problem
/// id is `prefix` followed by the definition's name in lower case with `-` for `_`.
pub fn import(
    homework: &str,
    path: &Path,
    solution: Option<(&str, &Path)>,
    prefix: &str,
) -> Result<Imported, BadInput> {
    let Module { definitions: found, module_examples, file_users } = definitions(homework, path)?;
    let solutions: HashMap<String, String> = match solution {
        Some((text, sol_path)) => definitions(text, sol_path)?
            .definitions
            .into_iter()
            .map(|d| (d.name, text[d.span].trim_end().to_owned() + "\n"))
            .collect(),
        None => HashMap::new(),
    };
    let mut unmapped = Vec::new();
    if module_examples > 0 {
        unmapped.push(format!(
            "{}: the module docstring's {module_examples} examples belong to no function or class: not imported",
            path.display()
        ));
    }
    let problems_at: Vec<&Definition> = found.iter().filter(|d| d.has_examples).collect();
    if problems_at.is_empty() {
        return Err(BadInput(format!("{}: no top-level function or class has doctest examples", path.display())));
    }
    // A submission has no file in the sandbox: `HW_SOURCE_FILE = __file__` and the examples that read the
    // homework's own source (CS 61A's `construct_check`) cannot run there.
    let mut source_readers = vec!["construct_check".to_owned(), "__file__".to_owned()];
    for (line, span) in &file_users {
        let statement = homework[span.clone()].trim_end();
        unmapped.push(left_out(path, *line, statement));
        if let Some((target, _)) = statement.split_once('=') {
            source_readers.push(target.trim().to_owned());
        }
    }
    let fixed = given_code(homework, &problems_at, &file_users);
    let mut problems = Vec::new();
    for definition in problems_at {
        let id = format!("{prefix}{}", definition.name.to_lowercase().replace('_', "-"));
        if !is_valid_id(&id) {
            return Err(BadInput(format!("--prefix `{prefix}`: `{id}` is not a valid problem id")));
        }
        let solution = match solutions.get(&definition.name) {
            Some(code) => code.clone(),
            None => {
                if let Some((_, sol_path)) = solution {
                    unmapped.push(format!(
                        "{}: no top-level `{}` in {}: problem `{id}` has no reference solution",
                        path.display(),
                        definition.name,
                        sol_path.display()
                    ));
                }
                String::new()
            }
        };
        let statement = definition.docstring.as_deref().map(prose).unwrap_or_default();
        let statement = if statement.is_empty() {
            format!("Write `{}` so that its examples pass.", definition.name)
        } else {
            statement
        };
        let (todo, dropped) = without_examples_using(&homework[definition.span.clone()], &source_readers);
        if dropped > 0 {
            unmapped.push(format!(
                "{}: `{}`: {dropped} examples read the homework's own source file ({}), which a sandboxed \
                 submission does not have: not imported",
                path.display(),
                definition.name,
                source_readers.join(", ")
            ));
        }
        problems.push(Problem {
            id,
            title: first_sentence(&statement),
            statement,
            entry: vec![definition.name.clone()],
            fixed: fixed.clone(),
            todo: todo.trim_end().to_owned() + "\n",
            solution,
            compare: Compare::Output,
            source: Some(format!("imported from {}", path.file_name().unwrap_or_default().to_string_lossy())),
            limits: ProblemLimits::default(),
            points: Default::default(),
            hidden: Vec::new(),
        });
    }
    if solution.is_none() {
        unmapped.push(format!(
            "{}: no --solution: the problems have no reference solution (`problems check` says so until one is written)",
            path.display()
        ));
    }
    Ok(Imported { problems, unmapped })
}

/// What a file holds at the top level: its definitions, how many examples its module docstring has, and the
/// statements that use `__file__` (with their 1-based line).
pub(super) struct Module {
    pub(super) definitions: Vec<Definition>,
    pub(super) module_examples: usize,
    pub(super) file_users: Vec<(usize, std::ops::Range<usize>)>,
}

/// The `unmapped` line for a statement of the homework at `path` that uses `__file__`.
pub(super) fn left_out(path: &Path, line: usize, statement: &str) -> String {
    format!(
        "{}:{line}: `{statement}` left out of the given code: a submission has no file in the sandbox",
        path.display()
    )
}

/// A Python file's module, or one line naming the file and line where it does not parse.
pub(super) fn parse_module(text: &str, path: &Path) -> Result<ast::ModModule, BadInput> {
    match parse(text, Mode::Module, &path.display().to_string()) {
        Ok(ast::Mod::Module(module)) => Ok(module),
        Ok(_) => unreachable!("Mode::Module parses a module"),
        Err(e) => {
            let line = text[..usize::from(e.offset).min(text.len())].matches('\n').count() + 1;
            Err(BadInput(format!("{}:{line}: not valid Python: {}", path.display(), e.error)))
        }
    }
}

pub(super) fn definitions(text: &str, path: &Path) -> Result<Module, BadInput> {
    let module = parse_module(text, path)?;
    let module_examples = docstring(&module.body).map_or(0, |d| examples_in(&d));
    let mut found = Vec::new();
    let mut file_users = Vec::new();
    for stmt in &module.body {
        let (name, decorators, body) = match stmt {
            Stmt::FunctionDef(f) => (f.name.to_string(), &f.decorator_list, &f.body),
            Stmt::AsyncFunctionDef(f) => (f.name.to_string(), &f.decorator_list, &f.body),
            Stmt::ClassDef(c) => (c.name.to_string(), &c.decorator_list, &c.body),
            _ => {
                let span = line_start(text, usize::from(stmt.start()))..line_end(text, usize::from(stmt.end()));
                if text[span.clone()].contains("__file__") {
                    file_users.push((text[..span.start].matches('\n').count() + 1, span));
                }
                continue;
            }
        };
        let start = decorators.iter().map(|d| usize::from(d.start())).chain([usize::from(stmt.start())]).min();
        let start = line_start(text, start.expect("a statement has a start"));
        let end = line_end(text, usize::from(stmt.end()));
        let docstring = docstring(body);
        found.push(Definition { name, span: start..end, has_examples: has_examples(body), docstring });
    }
    Ok(Module { definitions: found, module_examples, file_users })
}

/// Whether a definition's docstring, or (for a class) any of its methods' or nested classes', holds an example.
fn has_examples(body: &[Stmt]) -> bool {
    docstring(body).is_some_and(|d| examples_in(&d) > 0)
        || body.iter().any(|stmt| match stmt {
            Stmt::FunctionDef(f) => has_examples(&f.body),
            Stmt::AsyncFunctionDef(f) => has_examples(&f.body),
            Stmt::ClassDef(c) => has_examples(&c.body),
            _ => false,
        })
}

fn docstring(body: &[Stmt]) -> Option<String> {
    match body.first()? {
        Stmt::Expr(ast::StmtExpr { value, .. }) => match value.as_ref() {
            ast::Expr::Constant(ast::ExprConstant { value: ast::Constant::Str(s), .. }) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn examples_in(docstring: &str) -> usize {
    docstring.lines().filter(|l| l.trim_start().starts_with(">>>")).count()
}

/// A docstring's prose: its lines before the first example, dedented, with trailing blank lines dropped.
pub(super) fn prose(docstring: &str) -> String {
    let lines: Vec<&str> = docstring.lines().take_while(|l| !l.trim_start().starts_with(">>>")).collect();
    // the first line follows the quotes; the others share the definition's indentation
    let indent = lines
        .iter()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let dedented: Vec<&str> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| if i == 0 { l.trim() } else { l.get(indent..).unwrap_or_else(|| l.trim_start()) })
        .collect();
    dedented.join("\n").trim().to_owned()
}

/// `code` without the doctest examples whose lines mention one of `names` (see [`without_examples`]).
fn without_examples_using(code: &str, names: &[String]) -> (String, usize) {
    without_examples(code, |example| example.iter().any(|l| names.iter().any(|n| l.contains(n.as_str()))))
}

/// `code` without the doctest examples `drop` picks (an example: its `>>>` line, its `...` lines and its expected
/// output up to a blank line, the next `>>>` or the docstring's end), nor a comment-only example just before one;
/// and how many examples went.
pub(super) fn without_examples(code: &str, drop: impl Fn(&[&str]) -> bool) -> (String, usize) {
    let lines: Vec<&str> = code.split_inclusive('\n').collect();
    let is_prompt = |l: &str| l.trim_start().starts_with(">>>");
    let mut kept: Vec<&str> = Vec::with_capacity(lines.len());
    let mut dropped = 0;
    let mut i = 0;
    while i < lines.len() {
        if !is_prompt(lines[i]) {
            kept.push(lines[i]);
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        while i < lines.len() && lines[i].trim_start().starts_with("...") {
            i += 1;
        }
        while i < lines.len() && !is_prompt(lines[i]) && !lines[i].trim().is_empty() && !ends_docstring(lines[i]) {
            i += 1;
        }
        let example = &lines[start..i];
        if drop(example) {
            dropped += 1;
            // a `>>> # what the next check bans` comment goes with it
            if kept
                .last()
                .is_some_and(|l| l.trim_start().strip_prefix(">>>").is_some_and(|c| c.trim().starts_with('#')))
            {
                kept.pop();
            }
        } else {
            kept.extend_from_slice(example);
        }
    }
    (kept.concat(), dropped)
}

fn ends_docstring(line: &str) -> bool {
    let text = line.trim();
    text.starts_with("\"\"\"") || text.starts_with("'''")
}

fn first_sentence(statement: &str) -> String {
    let first = statement.lines().next().unwrap_or_default();
    let sentence = first.split_inclusive(". ").next().unwrap_or(first).trim();
    sentence.chars().take(80).collect()
}

fn line_start(text: &str, offset: usize) -> usize {
    text[..offset].rfind('\n').map_or(0, |i| i + 1)
}

fn line_end(text: &str, offset: usize) -> usize {
    text[offset..].find('\n').map_or(text.len(), |i| offset + i + 1)
}

/// A homework module as the given code of its problems: `text` without the definitions `taken` (the students'
/// part) and without the statements that use `__file__` (a submission has no file in the sandbox).
pub(super) fn given_code(text: &str, taken: &[&Definition], file_users: &[(usize, std::ops::Range<usize>)]) -> String {
    let mut removed: Vec<std::ops::Range<usize>> =
        taken.iter().map(|d| d.span.clone()).chain(file_users.iter().map(|(_, span)| span.clone())).collect();
    removed.sort_by_key(|span| span.start);
    without_spans(text, removed.into_iter())
}

/// `text` with the byte spans removed (in order, not overlapping), and runs of blank lines left by them folded to
/// two.
fn without_spans(text: &str, spans: impl Iterator<Item = std::ops::Range<usize>>) -> String {
    let mut kept = String::with_capacity(text.len());
    let mut at = 0;
    for span in spans {
        kept.push_str(&text[at..span.start]);
        at = span.end;
    }
    kept.push_str(&text[at..]);
    let mut folded = String::with_capacity(kept.len());
    let mut blank_run = 0;
    for line in kept.lines() {
        blank_run = if line.trim().is_empty() { blank_run + 1 } else { 0 };
        if blank_run <= 2 {
            folded.push_str(line);
            folded.push('\n');
        }
    }
    folded.trim().to_owned() + if folded.trim().is_empty() { "" } else { "\n" }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOMEWORK: &str = r#""""Homework 1.

>>> 1 + 1
2
"""
from operator import add, sub

LIMIT = 10


def helper(x):
    return x * 2


def a_plus_abs_b(a, b):
    """Return a+abs(b), but without calling abs.

    >>> a_plus_abs_b(2, 3)
    5
    >>> a_plus_abs_b(2, -3)
    5
    """
    if b >= 0:
        h = _____
    else:
        h = _____
    return h(a, b)


def no_tests(x):
    """Nothing to check here."""
    return x


@staticmethod
def largest_factor(n):
    """Return the largest factor of n that is smaller than n.

    >>> largest_factor(15) # factors are 1, 3, 5
    5
    """
    "*** YOUR CODE HERE ***"


class Account:
    """A bank account."""

    def deposit(self, amount):
        """
        >>> a = Account()
        >>> a.deposit(5)
        5
        """
        "*** YOUR CODE HERE ***"
"#;

    const SOLUTION: &str = "def a_plus_abs_b(a, b):\n    if b >= 0:\n        h = add\n    else:\n        h = sub\n    return h(a, b)\n\ndef largest_factor(n):\n    return max(i for i in range(1, n) if n % i == 0)\n";

    #[test]
    fn each_definition_with_examples_is_a_problem() {
        let imported =
            import(HOMEWORK, Path::new("hw01.py"), Some((SOLUTION, Path::new("hw01_sol.py"))), "hw01-").unwrap();
        let ids: Vec<&str> = imported.problems.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["hw01-a-plus-abs-b", "hw01-largest-factor", "hw01-account"]);
        let first = &imported.problems[0];
        assert_eq!(first.statement, "Return a+abs(b), but without calling abs.");
        assert!(first.todo.starts_with("def a_plus_abs_b(a, b):\n") && first.todo.ends_with("return h(a, b)\n"));
        assert!(first.solution.contains("h = add"));
        // the rest of the module, without any problem's definition
        assert!(first.fixed.contains("from operator import add, sub") && first.fixed.contains("def helper(x)"));
        assert!(first.fixed.contains("def no_tests(x)"));
        assert!(!first.fixed.contains("largest_factor") && !first.fixed.contains("class Account"));
        assert!(imported.problems[1].todo.starts_with("@staticmethod\ndef largest_factor"), "decorators kept");
        assert_eq!(imported.problems[2].entry, ["Account"]);
        assert!(imported.problems[2].solution.is_empty());
        assert_eq!(
            imported.unmapped,
            [
                "hw01.py: the module docstring's 1 examples belong to no function or class: not imported",
                "hw01.py: no top-level `Account` in hw01_sol.py: problem `hw01-account` has no reference solution",
            ]
        );
    }

    #[test]
    fn examples_that_read_the_source_file_are_dropped_with_their_comment() {
        let code = "def f():\n    \"\"\"Doc.\n\n    >>> f()\n    1\n    >>> # ban loops\n    >>> from construct_check import check\n    >>> check(HW_SOURCE_FILE, 'f',\n    ...       ['For'])\n    True\n    >>> f() + 1\n    2\n    \"\"\"\n";
        let names = ["construct_check".to_owned(), "HW_SOURCE_FILE".to_owned()];
        let (kept, dropped) = without_examples_using(code, &names);
        assert_eq!(dropped, 2);
        assert_eq!(kept, "def f():\n    \"\"\"Doc.\n\n    >>> f()\n    1\n    >>> f() + 1\n    2\n    \"\"\"\n");
    }

    #[test]
    fn a_file_without_examples_or_that_does_not_parse_is_refused() {
        let err = import("def f():\n    return 1\n", Path::new("a.py"), None, "").unwrap_err();
        assert_eq!(err.0, "a.py: no top-level function or class has doctest examples");
        let err = import("def f():\n    return (\n", Path::new("b.py"), None, "").unwrap_err();
        assert!(err.0.starts_with("b.py:"), "{}", err.0);
        assert!(err.0.contains("not valid Python"), "{}", err.0);
    }
}
