//! Statements and imports: E401, E402, E502, E701–E703, E731 (E704 is ignored by default and not counted).

use std::sync::LazyLock;

use fancy_regex::Regex;

use super::Kind;
use super::blank_lines::STARTSWITH_DEF;
use super::checker::Checker;
use super::logical::{Found, Logical, Offset};
use super::text::{Anchored, char_offset, is_identifier, is_py_whitespace, regex, within};
use crate::records::Pep8Code;

static LAMBDA: LazyLock<Regex> = LazyLock::new(|| regex(r"\blambda\b"));
static STARTSWITH_INDENT_STATEMENT: Anchored = Anchored {
    starts: "dafietwc",
    regex: LazyLock::new(|| {
        regex(r"^\s*(def|async\s+def|for|async\s+for|if|elif|else|try|except|finally|with|async\s+with|class|while)\b")
    }),
};
static DUNDER: Anchored =
    Anchored { starts: "_", regex: LazyLock::new(|| regex(r#"^__([^\s]+)__(?::\s*[a-zA-Z.0-9_\[\]"]+)? = "#)) };

pub fn compound_statements(line: &Logical, found: &mut Found) {
    let text = line.text;
    let bytes = text.as_bytes();
    let mut counts = [0i64; 6]; // { } [ ] ( )
    let mut prev_found = 0;
    let mut colon = text.find(':');
    while let Some(at) = colon.filter(|&at| at + 1 < text.len()) {
        for b in &bytes[prev_found..at] {
            if let Some(i) = b"{}[]()".iter().position(|c| c == b) {
                counts[i] += 1;
            }
        }
        if counts[0] <= counts[1] && counts[2] <= counts[3] && counts[4] <= counts[5] && bytes[at + 1] != b'=' {
            if text[..at].contains("lambda")
                && let Ok(Some(lambda)) = LAMBDA.find(&text[..at])
            {
                let before = text[..lambda.start()].trim_end_matches(is_py_whitespace);
                if let Some(target) = before.strip_suffix('=')
                    && is_identifier(target.trim_matches(is_py_whitespace))
                {
                    found.push((Offset::In(0), Pep8Code::E731));
                }
                break;
            }
            if STARTSWITH_DEF.is_match(text) {
                found.push((Offset::In(0), Pep8Code::E704));
            } else if STARTSWITH_INDENT_STATEMENT.is_match(text) {
                found.push((Offset::In(char_offset(text, at)), Pep8Code::E701));
            }
        }
        prev_found = at;
        colon = text[at + 1..].find(':').map(|i| i + at + 1);
    }
    for (at, _) in text.match_indices(';') {
        let code = if at + 1 < text.len() { Pep8Code::E702 } else { Pep8Code::E703 };
        found.push((Offset::In(char_offset(text, at)), code));
    }
}

pub fn explicit_line_join(line: &Logical, found: &mut Found) {
    let (mut prev_start, mut prev_end, mut parens) = (0u32, 0u32, 0i64);
    let mut comment = false;
    let mut backslash: Option<(u32, i32)> = None;
    for token in line.tokens {
        if token.kind == Kind::Comment {
            comment = true;
        }
        if token.start.0 != prev_start
            && parens != 0
            && !comment
            && let Some((row, col)) = backslash
        {
            found.push((Offset::At(row, col), Pep8Code::E502));
        }
        if token.start.0 != prev_start {
            comment = false;
        }
        if token.end.0 != prev_end {
            backslash = if token.line.trim_end_matches(['\r', '\n']).ends_with('\\') {
                let last = last_of_splitlines(&token.line);
                Some((token.end.0, last.chars().count() as i32 - 1))
            } else {
                None
            };
            prev_start = token.end.0;
            prev_end = token.end.0;
        } else {
            prev_start = token.start.0;
        }
        if token.kind == Kind::Op {
            if within(&token.text, "([{") {
                parens += 1;
            } else if within(&token.text, ")]}") {
                parens -= 1;
            }
        }
    }
}

/// The last line of Python's `str.splitlines()`.
fn last_of_splitlines(text: &str) -> &str {
    let is_break = |c: char| {
        matches!(c, '\n' | '\r' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}' | '\u{2029}')
    };
    let body = match text.char_indices().last() {
        Some((i, c)) if is_break(c) => {
            let body = &text[..i];
            if c == '\n' { body.strip_suffix('\r').unwrap_or(body) } else { body }
        }
        _ => text,
    };
    body.rsplit(is_break).next().unwrap_or("")
}

pub fn imports_on_separate_lines(line: &Logical, found: &mut Found) {
    if line.text.starts_with("import ")
        && let Some(at) = line.text.find(',')
        && !line.text[..at].contains(';')
    {
        found.push((Offset::In(char_offset(line.text, at)), Pep8Code::E401));
    }
}

// Branch for branch as pycodestyle writes it, empty and repeated branches included.
#[allow(clippy::if_same_then_else)]
pub fn module_imports_on_top_of_file(line: &Logical, c: &mut Checker, found: &mut Found) {
    let text = line.text;
    if c.indent_level > 0 || text.is_empty() || line.noqa {
        return;
    }
    if text.starts_with("import ") || text.starts_with("from ") {
        if c.imports.seen_non_imports {
            found.push((Offset::In(0), Pep8Code::E402));
        }
    } else if DUNDER.is_match(text) {
    } else if ["try", "except", "else", "finally", "with", "if", "elif"].iter().any(|kw| text.starts_with(kw)) {
    } else if is_string_literal(text) {
        if c.imports.seen_docstring {
            c.imports.seen_non_imports = true;
        } else {
            c.imports.seen_docstring = true;
        }
    } else {
        c.imports.seen_non_imports = true;
    }
}

fn is_string_literal(text: &str) -> bool {
    let text = text.strip_prefix(['u', 'U', 'b', 'B']).unwrap_or(text);
    let text = text.strip_prefix(['r', 'R']).unwrap_or(text);
    text.starts_with(['"', '\''])
}
