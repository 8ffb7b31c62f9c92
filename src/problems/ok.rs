//! `problems import ok`: OK-format test files, as okpy and Otter-Grader write them (`test = {'name', 'points',
//! 'suites': [{'type': 'doctest', 'cases': [{'code', 'hidden', 'locked', 'points'?}], 'setup', 'teardown',
//! 'scored'}]}`), with the homework file they test, as one problem per test file.
//!
//! A problem's `todo` is the homework's definitions its cases call, under a module docstring that holds its visible
//! cases; each hidden case is a `[[hidden]]` group; points follow Otter's rule (a case's own points, the rest of the
//! test's points shared by the cases without). Setup and teardown run around every case; the line that imports the
//! homework module goes, since the submission is that module.

use std::collections::BTreeMap;
use std::path::Path;

use rustpython_parser::ast::{self, Constant, Expr, Stmt};
use serde::Deserialize;

use super::doctest_file::{
    Definition, Module, definitions, given_code, left_out, parse_module, prose, without_examples,
};
use super::{Compare, HiddenTests, Problem, ProblemLimits, is_valid_id};
use crate::BadInput;

#[derive(Debug, Deserialize)]
struct OkTest {
    name: String,
    points: Option<f64>,
    #[serde(default)]
    suites: Vec<Suite>,
}

#[derive(Debug, Deserialize)]
struct Suite {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    cases: Vec<Case>,
    #[serde(default = "scored_by_default")]
    scored: bool,
    #[serde(default)]
    setup: String,
    #[serde(default)]
    teardown: String,
}

fn scored_by_default() -> bool {
    true
}

#[derive(Debug, Deserialize)]
struct Case {
    code: String,
    #[serde(default)]
    hidden: bool,
    #[serde(default)]
    locked: bool,
    points: Option<f64>,
}

/// The homework file the tests exercise, and its solution, each read and parsed once for every test file.
pub struct Homework<'a> {
    text: &'a str,
    path: &'a Path,
    module: Module,
    solution: Option<Solution<'a>>,
}

struct Solution<'a> {
    text: &'a str,
    path: &'a Path,
    definitions: Vec<Definition>,
}

impl<'a> Homework<'a> {
    /// The homework (its text and path) and the solution file, when given; one line where one does not parse.
    pub fn read(text: &'a str, path: &'a Path, solution: Option<(&'a str, &'a Path)>) -> Result<Self, BadInput> {
        let module = definitions(text, path)?;
        let solution = match solution {
            None => None,
            Some((text, path)) => Some(Solution { text, path, definitions: definitions(text, path)?.definitions }),
        };
        Ok(Self { text, path, module, solution })
    }

    /// What the homework itself loses on the way in, one line each (said once, whatever the number of tests):
    /// the statements that use `__file__`, which every problem's given code leaves out.
    pub fn unmapped(&self) -> Vec<String> {
        self.module
            .file_users
            .iter()
            .map(|(line, span)| left_out(self.path, *line, self.text[span.clone()].trim_end()))
            .collect()
    }
}

/// One test file's problem, or why it could not be made (one line for `unmapped`).
pub fn import_test(
    test_text: &str,
    test_path: &Path,
    homework: &Homework,
    prefix: &str,
) -> Result<(Problem, Vec<String>), BadInput> {
    let at = |what: String| BadInput(format!("{}: {what}", test_path.display()));
    let test = read_test(test_text, test_path)?;
    let mut unmapped = Vec::new();
    let module_name = homework.path.file_stem().unwrap_or_default().to_string_lossy().into_owned();
    let Module { definitions: defs, file_users, .. } = &homework.module;
    let (homework_path, solution, homework) = (homework.path, homework.solution.as_ref(), homework.text);
    // every scored doctest case, with the setup and teardown of its suite around it
    let mut cases: Vec<(String, &Case)> = Vec::new();
    for (s, suite) in test.suites.iter().enumerate() {
        if suite.kind != "doctest" {
            unmapped.push(format!(
                "{}: suite {} is of type `{}`, not doctest: not imported",
                test_path.display(),
                s + 1,
                suite.kind
            ));
            continue;
        }
        if !suite.scored {
            unmapped.push(format!(
                "{}: suite {} is not scored (practice): its {} cases are not imported",
                test_path.display(),
                s + 1,
                suite.cases.len()
            ));
            continue;
        }
        for (c, case) in suite.cases.iter().enumerate() {
            if case.locked {
                return Err(at(format!(
                    "suite {} case {} is locked: unlock it first (okpy: `python3 ok -q {} -u`)",
                    s + 1,
                    c + 1,
                    test.name
                )));
            }
            let setup = without_homework_import(&dedent(&suite.setup), &module_name);
            let text = [setup, dedent(&case.code), dedent(&suite.teardown)]
                .into_iter()
                .filter(|part| !part.trim().is_empty())
                .collect::<Vec<_>>()
                .join("\n");
            cases.push((text, case));
        }
    }
    if cases.is_empty() {
        return Err(at("no scored doctest case to import".into()));
    }
    let points = case_points(test.points.unwrap_or(1.0), &cases.iter().map(|(_, c)| c.points).collect::<Vec<_>>());

    // the homework's definitions the cases call are the student's part
    let uses = |name: &str| cases.iter().any(|(text, _)| mentions(text, name));
    let called: Vec<&Definition> = defs.iter().filter(|d| uses(&d.name)).collect();
    // the ones left to write; a helper the homework gives whole (`identity`) stays given code
    let stubs: Vec<&Definition> = called.iter().copied().filter(|d| is_stub(&homework[d.span.clone()])).collect();
    let entries = if stubs.is_empty() { called } else { stubs };
    if entries.is_empty() {
        return Err(at(format!(
            "its cases call no top-level function or class of {}: nothing for a student to write",
            homework_path.display()
        )));
    }
    let visible: Vec<&str> = cases.iter().filter(|(_, c)| !c.hidden).map(|(t, _)| t.as_str()).collect();
    let visible_points: f64 = cases.iter().zip(&points).filter(|((_, c), _)| !c.hidden).map(|(_, p)| p).sum();
    let docstring = module_docstring(&visible).map_err(at)?;
    // the definitions as the homework has them, but their own docstring examples: the test file's cases are the tests
    let stubs: Vec<String> = entries
        .iter()
        .map(|d| without_examples(&homework[d.span.clone()], |_| true).0.trim_end().to_owned() + "\n")
        .collect();
    let todo = format!("{docstring}{}", stubs.join("\n\n"));
    let fixed = given_code(homework, &entries, file_users);
    let hidden: Vec<HiddenTests> = cases
        .iter()
        .zip(&points)
        .filter(|((_, c), _)| c.hidden)
        .enumerate()
        .map(|(i, ((text, _), &p))| HiddenTests {
            name: format!("{} hidden {}", test.name, i + 1),
            doctest: text.clone() + "\n",
            points: Some(p),
        })
        .collect();
    if let Some(text) = cases.iter().map(|(t, _)| t).find(|t| t.contains("__file__")) {
        unmapped.push(format!(
            "{}: a case uses __file__, which a sandboxed submission does not have: {text:?}",
            test_path.display()
        ));
    }
    let solution = match solution {
        None => String::new(),
        Some(sol) => {
            let mut found = Vec::new();
            for entry in &entries {
                match sol.definitions.iter().find(|d| d.name == entry.name) {
                    Some(d) => found.push(sol.text[d.span.clone()].trim_end().to_owned() + "\n"),
                    None => unmapped.push(format!(
                        "{}: no top-level `{}` in {}: the reference solution lacks it",
                        test_path.display(),
                        entry.name,
                        sol.path.display()
                    )),
                }
            }
            found.join("\n\n")
        }
    };
    let id = format!("{prefix}{}", sanitize(&test.name));
    if !is_valid_id(&id) {
        return Err(at(format!("`{id}` (from the test's name) is not a valid problem id")));
    }
    let mut group_points = BTreeMap::new();
    if !visible.is_empty() {
        group_points.insert("<module>".to_owned(), visible_points);
    }
    let problem = Problem {
        id,
        title: test.name.clone(),
        statement: match entries.iter().find_map(|d| d.docstring.as_deref().map(prose)).filter(|p| !p.is_empty()) {
            Some(prose) => format!("{prose}\n\n(Write {}; graded by the tests of `{}`.)", names(&entries), test.name),
            None => format!("Write {} so that the tests of `{}` pass.", names(&entries), test.name),
        },
        entry: entries.iter().map(|d| d.name.clone()).collect(),
        fixed,
        todo,
        solution,
        compare: Compare::Output,
        source: Some(format!(
            "imported from {} and {}",
            test_path.file_name().unwrap_or_default().to_string_lossy(),
            homework_path.file_name().unwrap_or_default().to_string_lossy()
        )),
        limits: ProblemLimits::default(),
        points: group_points,
        hidden,
    };
    Ok((problem, unmapped))
}

/// The `test = {...}` literal of a test file.
fn read_test(text: &str, path: &Path) -> Result<OkTest, BadInput> {
    let at = |what: String| BadInput(format!("{}: {what}", path.display()));
    let module = parse_module(text, path)?;
    let value = module.body.iter().find_map(|stmt| match stmt {
        Stmt::Assign(assign)
            if assign.targets.iter().any(|t| matches!(t, Expr::Name(n) if n.id.as_str() == "test")) =>
        {
            Some(&assign.value)
        }
        _ => None,
    });
    let Some(value) = value else {
        return Err(at("no `test = {...}` (an OK-format file; Otter's Python-format tests are not supported)".into()));
    };
    let json =
        literal(value).ok_or_else(|| at("`test` is not a literal of dicts, lists, strings and numbers".into()))?;
    serde_json::from_value(json).map_err(|e| at(format!("`test` is not an OK test: {e}")))
}

/// A Python literal as JSON.
fn literal(expr: &Expr) -> Option<serde_json::Value> {
    use serde_json::Value;
    Some(match expr {
        Expr::Constant(c) => match &c.value {
            Constant::Str(s) => Value::String(s.clone()),
            Constant::Bool(b) => Value::Bool(*b),
            Constant::None => Value::Null,
            Constant::Int(i) => serde_json::Number::from_f64(i.to_string().parse().ok()?)?.into(),
            Constant::Float(f) => serde_json::Number::from_f64(*f)?.into(),
            _ => return None,
        },
        Expr::UnaryOp(op) if matches!(op.op, ast::UnaryOp::USub) => Value::from(-literal(&op.operand)?.as_f64()?),
        Expr::List(l) => Value::Array(l.elts.iter().map(literal).collect::<Option<_>>()?),
        Expr::Tuple(t) => Value::Array(t.elts.iter().map(literal).collect::<Option<_>>()?),
        Expr::Dict(d) => {
            let mut map = serde_json::Map::new();
            for (key, value) in d.keys.iter().zip(&d.values) {
                let Some(Value::String(key)) = key.as_ref().and_then(literal) else { return None };
                map.insert(key, literal(value)?);
            }
            Value::Object(map)
        }
        _ => return None,
    })
}

/// Otter's rule: a case worth its own `points` when it has them; the test's points left over shared evenly by
/// the cases without.
fn case_points(total: f64, own: &[Option<f64>]) -> Vec<f64> {
    let given: f64 = own.iter().flatten().sum();
    let without = own.iter().filter(|p| p.is_none()).count();
    let share = if without == 0 { 0.0 } else { (total - given).max(0.0) / without as f64 };
    own.iter().map(|p| p.unwrap_or(share)).collect()
}

/// The visible cases as the stub's module docstring (empty when there are none).
fn module_docstring(cases: &[&str]) -> Result<String, String> {
    if cases.is_empty() {
        return Ok(String::new());
    }
    let body = cases.join("\n\n");
    let quotes = ["\"\"\"", "'''"]
        .into_iter()
        .find(|q| !body.contains(q))
        .ok_or("a visible case holds both kinds of triple quotes; it cannot go into the stub's docstring")?;
    Ok(format!("{quotes}Tests:\n\n{body}\n{quotes}\n\n"))
}

/// Setup without the line that imports the homework module: in the sandbox the submission is that module.
fn without_homework_import(setup: &str, module: &str) -> String {
    setup
        .lines()
        .filter(|line| {
            let code = line.trim_start().trim_start_matches(">>>").trim();
            !(code == format!("from {module} import *") || code == format!("import {module}"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Python's `textwrap.dedent`, with leading and trailing blank lines dropped.
fn dedent(text: &str) -> String {
    let indent =
        text.lines().filter(|l| !l.trim().is_empty()).map(|l| l.len() - l.trim_start().len()).min().unwrap_or(0);
    let lines: Vec<&str> = text.lines().map(|l| l.get(indent..).unwrap_or("")).collect();
    lines.join("\n").trim_matches('\n').trim_end().to_owned()
}

/// Whether a definition is left for the student: CS 61A's and Otter's markers for the part to write.
fn is_stub(code: &str) -> bool {
    code.contains("YOUR CODE HERE") || code.contains("_____")
}

fn mentions(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + name.len()..].chars().next();
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !word(before) && !word(after)
    })
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c.to_ascii_lowercase() } else { '-' })
        .collect()
}

fn names(entries: &[&Definition]) -> String {
    entries.iter().map(|d| format!("`{}`", d.name)).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otters_rule_shares_what_cases_do_not_claim() {
        assert_eq!(case_points(4.0, &[None, None, Some(1.0), None]), [1.0, 1.0, 1.0, 1.0]);
        assert_eq!(case_points(2.0, &[None, None]), [1.0, 1.0]);
        assert_eq!(case_points(3.0, &[Some(0.5), Some(0.5)]), [0.5, 0.5]);
    }

    #[test]
    fn a_python_literal_reads_as_json() {
        let module = "test = {'name': 'q1', 'points': 2, 'suites': [{'cases': [{'code': r'''\n    >>> f(1)\n    2\n    ''', 'hidden': False, 'locked': False}], 'scored': True, 'setup': '', 'teardown': '', 'type': 'doctest'}]}\n";
        let test = read_test(module, Path::new("q1.py")).unwrap();
        assert_eq!((test.name.as_str(), test.points), ("q1", Some(2.0)));
        assert_eq!(dedent(&test.suites[0].cases[0].code), ">>> f(1)\n2");
    }
}
