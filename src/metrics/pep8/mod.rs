//! pycodestyle 2.14.0 in Rust (issue 12 parts 1-2): its default checks over CPython 3.14's token stream, with
//! the same (line, column, code) list as the sandboxed pycodestyle (`grade::Grader::pep8_problems`), plain and
//! in the reference study's wrapped mode. The lexer is proven equal to `tokenize` and the checks to pycodestyle
//! on every real program and on seeded mutations of them (`tests/pep8_native.rs`). The port is the default engine
//! (`Pep8Engine::Native`) since the 100,000-mutation differential run found no difference; the sandboxed checker
//! stays as the reference (`--pep8-engine sandbox`).

mod blank_lines;
mod checker;
mod comparisons;
mod indentation;
mod lexer;
mod logical;
mod physical;
mod statements;
mod strings;
mod text;
mod whitespace;

/// The lexer's tokens are the records the sandbox's `tokenize` gives, so the two compare directly.
pub use crate::records::{PyToken as Token, TokenKind as Kind};
pub use lexer::{LexError, tokenize};
pub use text::expand_indent;

use crate::records::{Pep8Code, StyleProblem};
use text::is_py_whitespace;

/// What pycodestyle counts in `code`, problem by problem in report order; `wrapped`: the reference study's mode
/// (one W292 left out when it fires, as the study subtracted it).
pub fn check(code: &str, wrapped: bool) -> Vec<StyleProblem> {
    let mut found = checker::check_lines(&checker_lines(code, wrapped));
    if wrapped && let Some(w292) = found.iter().position(|p| p.code == Pep8Code::W292) {
        found.remove(w292);
    }
    found
}

/// The lines pycodestyle reads from `code`: universal newlines, each line keeping its `\n`; or, in the reference
/// study's wrapped mode, the stripped code indented into `def _tmp_func():`, every line without its newline.
pub fn checker_lines(code: &str, wrapped: bool) -> Vec<String> {
    if wrapped {
        let mut lines = vec!["def _tmp_func():".to_owned()];
        lines.extend(
            code.trim_matches(is_py_whitespace)
                .split('\n')
                .map(|line| format!("    {}", line.trim_end_matches(is_py_whitespace))),
        );
        return lines;
    }
    let normalized = code.replace("\r\n", "\n").replace('\r', "\n");
    let mut lines: Vec<String> = normalized.split_inclusive('\n').map(str::to_owned).collect();
    // pycodestyle drops a byte-order mark at the start of the first line.
    if let Some(first) = lines.first_mut()
        && let Some(rest) = first.strip_prefix('\u{feff}')
    {
        *first = rest.to_owned();
    }
    lines
}
