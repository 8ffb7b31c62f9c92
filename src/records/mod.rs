//! The record types every stage shares, at the bottom of the module map: what a grade's label and compare mode
//! are, a stage of a stream, what a student is shown after an attempt, and a trajectory row with its
//! provenance. Nothing here depends on another module of the crate, so each module can use them without
//! cycles (`grade` and `problems` share `Compare`; a row's `Provenance` holds a typed `Feedback`).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

mod pep8_code;
pub use pep8_code::{Pep8Code, UnknownCode};

/// How long-running library work reports how far it is. The CLI draws it as a bar on stderr (`cli::output`);
/// callers with nothing to show pass [`NoProgress`].
pub trait Progress: Send + Sync {
    /// A phase of `total` items starts; the count of done items goes back to 0.
    fn start(&self, total: u64);
    /// `n` more items are done.
    fn advance(&self, n: u64);
}

/// Progress nobody watches.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _total: u64) {}
    fn advance(&self, _n: u64) {}
}

/// The four functionality labels, in the study's precedence: compile > runtime > logical > no_error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    NoError,
    Logical,
    Runtime,
    Compile,
}

impl Label {
    /// Every label, in the order tables and transition matrices use.
    pub const ALL: [Label; 4] = [Label::NoError, Label::Logical, Label::Runtime, Label::Compile];

    /// This label's position in [`Label::ALL`].
    pub fn index(self) -> usize {
        match self {
            Label::NoError => 0,
            Label::Logical => 1,
            Label::Runtime => 2,
            Label::Compile => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Label::NoError => "no_error",
            Label::Logical => "logical",
            Label::Runtime => "runtime",
            Label::Compile => "compile",
        }
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an example's output is compared with its expected output on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compare {
    /// Everything the example printed, display hook included: standard doctest.
    #[default]
    Output,
    /// Only the repr of the example's value; prints are ignored, as in I/O autograders that compare return
    /// values (Refactory's course did: its "correct" programs may print debugging lines).
    Value,
}

/// The three stages of Experiment 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    First,
    Middle,
    Last,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::First, Stage::Middle, Stage::Last];

    /// The stage as written in reports and data files.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::First => "first",
            Stage::Middle => "middle",
            Stage::Last => "last",
        }
    }

    /// The row of a stream of `n` rows at this stage.
    pub fn position(self, n: usize) -> usize {
        match self {
            Stage::First => 0,
            Stage::Middle => n / 2,
            Stage::Last => n - 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailingExample {
    pub source: String,
    pub want: String,
    pub got: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    pub label: Label,
    /// The compile error or module-level exception, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Failing examples, already truncated for a prompt.
    #[serde(default)]
    pub failing: Vec<FailingExample>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Why the tutor gave no hint (it crashed, hung or answered garbage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tutor_error: Option<String>,
}

/// Where a row comes from: real students, or a generator (by name). Written as `"real"` or the generator's name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum Source {
    #[default]
    Real,
    Generator(String),
}

impl Source {
    /// What rows and reports call it: `real`, or the generator's name.
    pub fn name(&self) -> &str {
        match self {
            Source::Real => "real",
            Source::Generator(name) => name,
        }
    }
}

impl From<String> for Source {
    fn from(name: String) -> Self {
        if name == Source::Real.name() { Source::Real } else { Source::Generator(name) }
    }
}

impl From<Source> for String {
    fn from(source: Source) -> Self {
        source.name().to_owned()
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One submission of one student to one problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    /// Anonymized student id.
    pub student: String,
    pub problem: String,
    /// When it was submitted (RFC 3339).
    pub time: Timestamp,
    /// 1-based position within its stream.
    pub attempt: u32,
    pub code: String,
    /// Our grader's label, once graded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<Label>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_rate: Option<f64>,
    /// Real students, or the generator that wrote it.
    #[serde(default)]
    pub source: Source,
    /// The original platform's verdict, when the dataset has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_correct: Option<bool>,
    /// How a simulated row was made; absent on real rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated: Option<Provenance>,
    /// The row's other fields (a user's own `id`, course columns), kept as read and written back unchanged by
    /// every command that writes rows, so results can be joined to the user's data.
    #[serde(flatten, default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// How a generated row was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    pub generator: String,
    pub seed: u64,
    /// sha256 of the exact prompt, for generators that render one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_sha256: Option<String>,
    /// The generator marked this attempt final (`<SUBMIT>`).
    #[serde(default)]
    pub submit: bool,
    /// What the model wrote, before the code was taken out of it (capped), for model generators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// The model's reply ended at its token limit.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// What the student was shown after this attempt (streams): label, failing examples, hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<Feedback>,
    /// Why the row holds no attempt: the generator failed (the rollout goes on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Submission {
    /// The fields a row has a place for (the others go to `extra`); kept beside the struct so the two agree.
    pub const FIELDS: [&str; 10] = [
        "student",
        "problem",
        "time",
        "attempt",
        "code",
        "label",
        "pass_rate",
        "source",
        "platform_correct",
        "generated",
    ];
}

/// One problem a PEP 8 checker reports, as pycodestyle's report receives it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StyleProblem {
    /// 1-based line.
    pub line: i32,
    /// 0-based column.
    pub column: i32,
    pub code: Pep8Code,
}

/// A token type of CPython 3.14's `tokenize`, numbered as its `token` module numbers it (`tokenize` reports
/// every operator as `OP`, and these are all the types it yields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TokenKind {
    EndMarker = 0,
    Name = 1,
    Number = 2,
    String = 3,
    Newline = 4,
    Indent = 5,
    Dedent = 6,
    Op = 55,
    FStringStart = 59,
    FStringMiddle = 60,
    FStringEnd = 61,
    TStringStart = 62,
    TStringMiddle = 63,
    TStringEnd = 64,
    Comment = 65,
    Nl = 66,
}

impl TokenKind {
    /// The kind with CPython's type number `number`, if `tokenize` yields it.
    pub fn from_number(number: u8) -> Option<Self> {
        use TokenKind::*;
        [
            EndMarker,
            Name,
            Number,
            String,
            Newline,
            Indent,
            Dedent,
            Op,
            FStringStart,
            FStringMiddle,
            FStringEnd,
            TStringStart,
            TStringMiddle,
            TStringEnd,
            Comment,
            Nl,
        ]
        .into_iter()
        .find(|kind| *kind as u8 == number)
    }
}

/// One token of CPython 3.14's `tokenize.generate_tokens` (`TokenInfo`): its type, text, 1-based line and 0-based
/// character column of its start and end, and the physical line(s) it was read from (`line`). The sandbox's
/// `tokenize` export and the native PEP 8 lexer both give these. `line` is shared: a physical line's tokens hold
/// one copy of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyToken {
    pub kind: TokenKind,
    pub text: String,
    /// (line, column); the column is negative where CPython's is (see `metrics::pep8::lexer`).
    pub start: (u32, i32),
    pub end: (u32, i32),
    pub line: Arc<str>,
}

/// What `tokenize` stopped with, and where pycodestyle reports it (E901).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizeError {
    pub type_name: String,
    pub message: String,
    pub line: i32,
    pub column: i32,
}

/// The tokens of one file, up to the error that stopped `tokenize`, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenStream {
    pub tokens: Vec<PyToken>,
    pub error: Option<TokenizeError>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_what_a_full_submission_writes() {
        let row = Submission {
            student: "s".into(),
            problem: "p".into(),
            time: Timestamp::from_second(1_600_000_000).unwrap(),
            attempt: 1,
            code: "x = 1".into(),
            label: Some(Label::NoError),
            pass_rate: Some(1.0),
            source: Source::Generator("g".into()),
            platform_correct: Some(true),
            generated: Some(Provenance {
                generator: "g".into(),
                seed: 0,
                prompt_sha256: None,
                submit: false,
                raw: None,
                truncated: false,
                feedback: None,
                error: None,
            }),
            extra: serde_json::Map::new(),
        };
        let written = serde_json::to_value(&row).unwrap();
        let mut keys: Vec<&str> = written.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut fields = Submission::FIELDS.to_vec();
        fields.sort_unstable();
        assert_eq!(keys, fields, "Submission::FIELDS must name every field a full row writes");
    }

    #[test]
    fn a_source_is_written_as_real_or_the_generators_name() {
        assert_eq!(serde_json::to_string(&Source::Real).unwrap(), "\"real\"");
        assert_eq!(serde_json::to_string(&Source::Generator("edits".into())).unwrap(), "\"edits\"");
        assert_eq!(serde_json::from_str::<Source>("\"real\"").unwrap(), Source::Real);
        assert_eq!(serde_json::from_str::<Source>("\"edits\"").unwrap(), Source::Generator("edits".into()));
    }
}
