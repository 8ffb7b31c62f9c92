//! The problem registry: one folder per problem, each with a `problem.toml` manifest.
//!
//! A problem's tests are the doctest examples in its `todo` code (the stub with docstrings handed to the
//! student). The student's submission replaces the TODO functions and runs after the `fixed` code.

pub mod doctest_file;
pub mod ok;
pub mod refactory;
mod stub;

pub use stub::without_expected_outputs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::BadInput;
use crate::records::Compare;

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

pub const MANIFEST: &str = "problem.toml";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Problem {
    /// Unique id; also the folder name.
    pub id: String,
    pub title: String,
    /// The instructions shown to the student.
    pub statement: String,
    /// The function(s) the student writes.
    pub entry: Vec<String>,
    /// Code given to the student, run before the submission (helpers, constants).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fixed: String,
    /// The stub the student starts from; its docstrings hold the doctests.
    pub todo: String,
    /// A reference solution (a replacement for `todo`); `problems check` grades it.
    pub solution: String,
    /// `output` (default): doctest compares everything printed; `value`: only the example's value.
    #[serde(default, skip_serializing_if = "is_default")]
    pub compare: Compare,
    /// Where the problem comes from and under which license, when not written for studentsim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// This problem's own sandbox limits (`[limits]`), tighter than the command line's.
    #[serde(default, skip_serializing_if = "is_default")]
    pub limits: ProblemLimits,
    /// Points per docstring of `todo`, by its owner (`count_vowels`, `Account.deposit`, `<module>`), shared
    /// evenly by its examples; a docstring not named here is worth 1 point per example.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "positive_points")]
    pub points: BTreeMap<String, f64>,
    /// Examples graded but never shown: not in the stub, a student's feedback, a model's prompt or `serve`'s
    /// answers. Their outcome counts; their code and expected output stay with course staff.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden: Vec<HiddenTests>,
}

/// One group of hidden examples (`[[hidden]]`): doctest text, as it would appear inside a docstring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HiddenTests {
    /// The group's name in grade records (`hidden` examples are reported by group, line and outcome only).
    pub name: String,
    /// `>>>` examples and their expected output, run in a fresh copy of the module's globals.
    pub doctest: String,
    /// The group's points, shared evenly by its examples [default: 1 per example].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<f64>,
}

/// A problem's own limits: a hang then costs what the problem needs, not the global limit. `problems check`
/// suggests them from the reference solution, and `--calibrate` writes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProblemLimits {
    /// Seconds one doctest example may run; `--example-timeout` still caps it.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "positive_seconds")]
    pub example_timeout: Option<f64>,
}

/// Points per group, refused while parsing (so the error carries the location) unless each is a finite number,
/// 0 or more (a practice docstring may be worth nothing).
fn positive_points<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<String, f64>, D::Error> {
    let points = BTreeMap::<String, f64>::deserialize(deserializer)?;
    match points.iter().find(|(_, p)| !is_points(**p)) {
        Some((group, p)) => {
            Err(serde::de::Error::custom(format!("points.{group} must be a number of points (0 or more), not {p}")))
        }
        None => Ok(points),
    }
}

/// Whether `points` can be what an example group is worth: a finite number, 0 or more.
fn is_points(points: f64) -> bool {
    points.is_finite() && points >= 0.0
}

/// A limit in seconds, refused while parsing (so the error carries the value's line and column) unless it is a
/// positive finite number.
fn positive_seconds<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    let seconds = f64::deserialize(deserializer)?;
    if seconds.is_finite() && seconds > 0.0 {
        Ok(Some(seconds))
    } else {
        Err(serde::de::Error::custom(format!(
            "limits.example_timeout must be a positive number of seconds, not {seconds}"
        )))
    }
}

impl Problem {
    /// Parse a manifest; errors name the file, line and column.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, BadInput> {
        toml::from_str(text).map_err(|e| {
            let (line, col) = e.span().map_or((1, 1), |span| line_col(text, span.start));
            BadInput(format!("{}:{line}:{col}: {}", path.display(), e.message()))
        })
    }

    /// The per-example limit the problem sets, if any.
    pub fn example_timeout(&self) -> Option<std::time::Duration> {
        self.limits.example_timeout.map(std::time::Duration::from_secs_f64)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a problem always serializes")
    }

    /// A manifest to start a new problem from; its function is named after the id ([`python_name`]).
    pub fn scaffold(id: &str) -> Self {
        let name = python_name(id);
        Self {
            id: id.to_owned(),
            title: format!("{id} (write a title)"),
            statement: "Describe the task the student must solve.".into(),
            entry: vec![name.clone()],
            fixed: String::new(),
            todo: format!(
                "def {name}(x):\n    \"\"\"Describe what {name} returns.\n\n    >>> {name}(1)\n    2\n    \"\"\"\n    \"*** YOUR CODE HERE ***\"\n"
            ),
            solution: format!("def {name}(x):\n    return x + 1\n"),
            compare: Compare::Output,
            source: None,
            limits: ProblemLimits::default(),
            points: BTreeMap::new(),
            hidden: Vec::new(),
        }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Every problem of one registry folder, by id. A folder whose manifest cannot be read, parsed or validated is
/// kept aside as broken: that problem is unavailable (with its error, file, line and column), the others are not.
#[derive(Debug, Clone)]
pub struct Registry {
    dir: PathBuf,
    problems: BTreeMap<String, Problem>,
    /// Folder name → what is wrong with its manifest (one line: file, line, column, what).
    broken: BTreeMap<String, String>,
}

impl Registry {
    pub fn load(dir: &Path) -> Result<Self> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| BadInput(format!("{}: cannot read the problem registry: {e}", dir.display())))?;
        let mut problems = BTreeMap::new();
        let mut broken = BTreeMap::new();
        for entry in entries {
            let folder = entry?.path();
            let manifest = folder.join(MANIFEST);
            if !manifest.is_file() {
                continue;
            }
            match read_manifest(&folder, &manifest) {
                Ok(problem) => {
                    problems.insert(problem.id.clone(), problem);
                }
                Err(error) => {
                    broken.insert(folder.file_name().unwrap_or_default().to_string_lossy().into_owned(), error.0);
                }
            }
        }
        Ok(Self { dir: dir.to_path_buf(), problems, broken })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn iter(&self) -> impl Iterator<Item = &Problem> {
        self.problems.values()
    }

    /// `(folder name, error)` of each problem whose manifest is broken, in folder order.
    pub fn broken(&self) -> impl Iterator<Item = (&str, &str)> {
        self.broken.iter().map(|(folder, error)| (folder.as_str(), error.as_str()))
    }

    pub fn get(&self, id: &str) -> Result<&Problem, BadInput> {
        if let Some(problem) = self.problems.get(id) {
            return Ok(problem);
        }
        if let Some(error) = self.broken.get(id) {
            return Err(BadInput(format!("problem `{id}` is unavailable: {error}")));
        }
        let suggestion = self.closest_id(id).map(|near| format!("did you mean `{near}`? ")).unwrap_or_default();
        Err(BadInput(format!(
            "unknown problem `{id}` ({suggestion}registry {} has {}; see `studentsim problems list`)",
            self.dir.display(),
            self.problems.len()
        )))
    }

    /// The id nearest to a mistyped one, when it is near enough to be what was meant (at most a third of its
    /// characters edited, at least 2 allowed).
    fn closest_id(&self, id: &str) -> Option<&str> {
        let allowed = (id.chars().count() / 3).max(2);
        self.problems
            .keys()
            .chain(self.broken.keys())
            .map(|known| (rapidfuzz::distance::levenshtein::distance(id.chars(), known.chars()), known))
            .filter(|(distance, _)| *distance <= allowed)
            .min()
            .map(|(_, known)| known.as_str())
    }
}

/// One folder's problem, or what is wrong with its manifest (file, line and column).
fn read_manifest(folder: &Path, manifest: &Path) -> Result<Problem, BadInput> {
    let bytes = std::fs::read(manifest).map_err(|e| BadInput(format!("{}: cannot read: {e}", manifest.display())))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let (line, col) = line_col_bytes(e.as_bytes(), at);
        BadInput(format!("{}:{line}:{col}: not valid UTF-8 (byte {at})", manifest.display()))
    })?;
    let problem = Problem::from_toml(&text, manifest)?;
    validate(&problem, folder, manifest)?;
    Ok(problem)
}

/// The 1-based line and column (in characters of the valid text before it) of byte `offset`.
fn line_col_bytes(bytes: &[u8], offset: usize) -> (usize, usize) {
    let valid = std::str::from_utf8(&bytes[..offset]).expect("the bytes before the first invalid one are UTF-8");
    line_col(valid, offset)
}

fn validate(problem: &Problem, folder: &Path, manifest: &Path) -> Result<(), BadInput> {
    let bad = |what: String| BadInput(format!("{}: {what}", manifest.display()));
    let folder_name = folder.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if problem.id != folder_name {
        return Err(bad(format!("id `{}` differs from its folder name `{folder_name}`", problem.id)));
    }
    if !is_valid_id(&problem.id) {
        return Err(bad(format!("id `{}` must be letters, digits, `_` or `-`", problem.id)));
    }
    if problem.entry.is_empty() {
        return Err(bad("`entry` names no function".into()));
    }
    let mut names = std::collections::BTreeSet::new();
    for hidden in &problem.hidden {
        if hidden.name.trim().is_empty() || !names.insert(hidden.name.as_str()) {
            return Err(bad(format!("hidden group name `{}` is empty or used twice", hidden.name)));
        }
        if hidden.points.is_some_and(|p| !is_points(p)) {
            return Err(bad(format!("hidden group `{}`: points must be a number, 0 or more", hidden.name)));
        }
        if !hidden.doctest.contains(">>>") {
            return Err(bad(format!("hidden group `{}` has no `>>>` example", hidden.name)));
        }
    }
    Ok(())
}

/// `(name, signature)` of each top-level `def` of `code`, the signature as written (`name(args)`, no `def`, no
/// colon); tolerant of extra spaces after `def`.
pub fn top_level_functions(code: &str) -> Vec<(String, String)> {
    code.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("def")?;
            if !rest.starts_with(char::is_whitespace) {
                return None;
            }
            let rest = rest.trim();
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            let (signature, _) = rest.rsplit_once(':')?;
            (!name.is_empty()).then(|| (name, signature.trim().to_owned()))
        })
        .collect()
}

/// A Python function name for a problem id: `-` becomes `_`, a leading digit gets `problem_` before it and a
/// keyword `_` after it (`2sum` → `problem_2sum`, `class` → `class_`).
pub fn python_name(id: &str) -> String {
    const KEYWORDS: [&str; 35] = [
        "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del",
        "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal",
        "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
    ];
    let name = id.replace('-', "_");
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("problem_{name}")
    } else if KEYWORDS.contains(&name.as_str()) {
        format!("{name}_")
    } else {
        name
    }
}

pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_errors_name_file_line_and_column() {
        let text = "id = \"a\"\ntitle = \"t\"\nstatement = 3\n";
        let err = Problem::from_toml(text, Path::new("p/a/problem.toml")).unwrap_err();
        assert!(err.0.starts_with("p/a/problem.toml:3:13:"), "{}", err.0);
    }

    #[test]
    fn top_level_functions_tolerate_spacing() {
        let code = "def  f(a, b):\n    def inner():\n        pass\ndefault = 1\ndef g():\n    pass\n";
        assert_eq!(
            top_level_functions(code),
            [("f".to_owned(), "f(a, b)".to_owned()), ("g".to_owned(), "g()".to_owned())]
        );
    }

    #[test]
    fn a_problem_limit_must_be_a_positive_number_of_seconds() {
        let base = Problem::scaffold("p").to_toml();
        let with = |limits: &str| format!("{base}\n[limits]\n{limits}\n");
        let ok = Problem::from_toml(&with("example_timeout = 0.05"), Path::new("x")).unwrap();
        assert_eq!(ok.example_timeout(), Some(std::time::Duration::from_millis(50)));
        let text = with("example_timeout = -1.0");
        let err = Problem::from_toml(&text, Path::new("p/problem.toml")).unwrap_err();
        // The location is the value's (`example_timeout = ` is 18 characters), whatever else mentions the name.
        let line = text.lines().position(|l| l.starts_with("example_timeout")).unwrap() + 1;
        assert!(
            err.0.starts_with(&format!("p/problem.toml:{line}:19: limits.example_timeout must be a positive")),
            "{}",
            err.0
        );
        let err = Problem::from_toml(&with("memory = 3"), Path::new("p/problem.toml")).unwrap_err();
        assert!(err.0.contains("unknown field `memory`"), "{}", err.0);
    }

    #[test]
    fn a_scaffold_names_its_function_validly() {
        assert_eq!(python_name("2sum"), "problem_2sum");
        assert_eq!(python_name("class"), "class_");
        assert_eq!(python_name("sum-digits"), "sum_digits");
        assert!(Problem::scaffold("2sum").todo.starts_with("def problem_2sum(x):"));
    }

    #[test]
    fn scaffold_round_trips() {
        let p = Problem::scaffold("my-problem");
        assert_eq!(Problem::from_toml(&p.to_toml(), Path::new("x")).unwrap(), p);
    }
}
