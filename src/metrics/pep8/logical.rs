//! The logical-line checks, called in pycodestyle's order (its check functions sorted by name); each family of
//! checks lives in its own module, as ruff keeps its rules.

use super::Token;
use super::checker::Checker;
use super::{blank_lines, comparisons, statements, strings, whitespace};
use crate::records::Pep8Code;

/// Where a logical check reports: a source position, or an offset (in characters) into the logical line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offset {
    At(u32, i32),
    In(usize),
}

/// One logical line as the checks read it.
pub struct Logical<'a> {
    /// The logical line: tokens joined, strings muted, comments left out.
    pub text: &'a str,
    pub tokens: &'a [Token],
    /// A `# noqa` among its comments.
    pub noqa: bool,
    pub lines: &'a [String],
    /// How many lines the tokenizer has read (pycodestyle's `line_number`).
    pub line_number: usize,
}

pub type Found = Vec<(Offset, Pep8Code)>;

/// Every (offset, code) the logical checks report for `line`, in pycodestyle's order; `Err` with what was found
/// before pycodestyle itself would have raised (then it checks nothing more in the file).
pub fn checks(line: &Logical, checker: &mut Checker) -> Result<Found, Found> {
    let mut found = Found::new();
    comparisons::ambiguous_identifier(line, &mut found);
    comparisons::bare_except(line, &mut found);
    blank_lines::blank_lines(line, checker, &mut found);
    comparisons::comparison_negative(line, &mut found);
    comparisons::comparison_to_singleton(line, &mut found);
    comparisons::comparison_type(line, &mut found);
    statements::compound_statements(line, &mut found);
    super::indentation::continued_indentation(line, checker, &mut found);
    statements::explicit_line_join(line, &mut found);
    whitespace::extraneous_whitespace(line, &mut found);
    statements::imports_on_separate_lines(line, &mut found);
    super::indentation::indentation(line, checker, &mut found);
    whitespace::missing_whitespace(line, &mut found);
    whitespace::missing_whitespace_after_keyword(line, &mut found);
    statements::module_imports_on_top_of_file(line, checker, &mut found);
    if strings::invalid_escape_sequence(line, &mut found).is_err() {
        return Err(found);
    }
    whitespace::whitespace_around_keywords(line, &mut found);
    whitespace::whitespace_around_named_parameter_equals(line, &mut found);
    whitespace::whitespace_around_operator(line, &mut found);
    whitespace::whitespace_before_comment(line, &mut found);
    whitespace::whitespace_before_parameters(line, &mut found);
    Ok(found)
}

/// Python's `keyword.iskeyword` (3.14).
pub fn is_keyword(s: &str) -> bool {
    matches!(
        s,
        "False"
            | "None"
            | "True"
            | "and"
            | "as"
            | "assert"
            | "async"
            | "await"
            | "break"
            | "class"
            | "continue"
            | "def"
            | "del"
            | "elif"
            | "else"
            | "except"
            | "finally"
            | "for"
            | "from"
            | "global"
            | "if"
            | "import"
            | "in"
            | "is"
            | "lambda"
            | "nonlocal"
            | "not"
            | "or"
            | "pass"
            | "raise"
            | "return"
            | "try"
            | "while"
            | "with"
            | "yield"
    )
}

/// Python's `keyword.issoftkeyword` (3.14).
pub fn is_soft_keyword(s: &str) -> bool {
    matches!(s, "_" | "case" | "match" | "type")
}

/// pycodestyle's `KEYWORDS`: the keywords and `print`, without the singletons.
pub fn is_pycodestyle_keyword(s: &str) -> bool {
    (is_keyword(s) && !matches!(s, "False" | "None" | "True")) || s == "print"
}
