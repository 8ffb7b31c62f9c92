//! Blank lines around definitions: E301–E306.

use std::sync::LazyLock;

use super::checker::Checker;
use super::logical::{Found, Logical, Offset};
use super::text::{Anchored, expand_indent, is_py_whitespace, regex};
use crate::records::Pep8Code;

const TOP_LEVEL_LINES: usize = 2;
const METHOD_LINES: usize = 1;

pub static STARTSWITH_TOP_LEVEL: Anchored =
    Anchored { starts: "adc@", regex: LazyLock::new(|| regex(r"^(async\s+def\s+|def\s+|class\s+|@)")) };
pub static STARTSWITH_DEF: Anchored =
    Anchored { starts: "ad", regex: LazyLock::new(|| regex(r"^(async\s+def|def)\b")) };
static DOCSTRING: Anchored = Anchored { starts: "ur\"'", regex: LazyLock::new(|| regex(r#"^u?r?["']"#)) };

pub fn blank_lines(line: &Logical, c: &Checker, found: &mut Found) {
    let logical = line.text;
    if c.previous_logical.is_empty() && c.blank_before < TOP_LEVEL_LINES {
        return;
    }
    if c.previous_logical.starts_with('@') {
        if c.blank_lines > 0 {
            found.push((Offset::In(0), Pep8Code::E304));
        }
    } else if c.blank_lines > TOP_LEVEL_LINES || (c.indent_level > 0 && c.blank_lines == METHOD_LINES + 1) {
        found.push((Offset::In(0), Pep8Code::E303));
    } else if STARTSWITH_TOP_LEVEL.is_match(logical) {
        if is_one_liner(logical, c.indent_level, line.lines, line.line_number) && c.blank_before == 0 {
            return;
        }
        if c.indent_level > 0 {
            if !(c.blank_before == METHOD_LINES
                || c.previous_indent_level < c.indent_level
                || DOCSTRING.is_match(&c.previous_logical))
            {
                let mut ancestor_level = c.indent_level;
                let mut nested = false;
                // lines[line_number - 2::-1], with Python's negative start.
                let len = line.lines.len() as i64;
                let mut from = line.line_number as i64 - TOP_LEVEL_LINES as i64;
                if from < 0 {
                    from += len;
                }
                let from = from.min(len - 1);
                if from >= 0 {
                    for text in line.lines[..=from as usize].iter().rev() {
                        if !text.trim_matches(is_py_whitespace).is_empty() && expand_indent(text) < ancestor_level {
                            ancestor_level = expand_indent(text);
                            nested = STARTSWITH_DEF.is_match(text.trim_start_matches(is_py_whitespace));
                            if nested || ancestor_level == 0 {
                                break;
                            }
                        }
                    }
                }
                found.push((Offset::In(0), if nested { Pep8Code::E306 } else { Pep8Code::E301 }));
            }
        } else if c.blank_before != TOP_LEVEL_LINES {
            found.push((Offset::In(0), Pep8Code::E302));
        }
    } else if !logical.is_empty()
        && c.indent_level == 0
        && c.blank_before != TOP_LEVEL_LINES
        && (c.previous_unindented_logical_line.starts_with("def ")
            || c.previous_unindented_logical_line.starts_with("class "))
    {
        found.push((Offset::In(0), Pep8Code::E305));
    }
}

/// pycodestyle's `_is_one_liner`: a definition whose body sits on its own line.
fn is_one_liner(logical: &str, indent_level: usize, lines: &[String], line_number: usize) -> bool {
    if !STARTSWITH_TOP_LEVEL.is_match(logical) {
        return false;
    }
    let mut idx = line_number as i64 - 1;
    let prev_indent = if idx < 1 { 0 } else { expand_indent(&lines[idx as usize - 1]) };
    if prev_indent > indent_level {
        return false;
    }
    let idx = loop {
        if idx >= lines.len() as i64 {
            return false;
        }
        // A negative index reads from the end, as Python's does.
        let at = if idx < 0 { (lines.len() as i64 + idx).max(0) as usize } else { idx as usize };
        let text = lines[at].trim_matches(is_py_whitespace);
        if !text.starts_with('@') && STARTSWITH_TOP_LEVEL.is_match(text) {
            break idx;
        }
        idx += 1;
    };
    let mut next = idx + 1;
    while next < lines.len() as i64 {
        if !lines[next as usize].trim_matches(is_py_whitespace).is_empty() {
            return expand_indent(&lines[next as usize]) <= indent_level;
        }
        next += 1;
    }
    true
}
