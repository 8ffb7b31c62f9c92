//! Indentation and continuation lines: E111–E117, E122–E131 (E121, E123 and E126 are ignored by default and
//! not counted; E133 needs `hang_closing`, off by default).

use std::collections::HashMap;

use super::Kind;
use super::checker::Checker;
use super::logical::{Found, Logical, Offset};
use super::text::{expand_indent, is_py_whitespace, slice_chars, within};
use crate::records::Pep8Code;

const INDENT_SIZE: i64 = 4;

pub fn indentation(line: &Logical, c: &Checker, found: &mut Found) {
    let comment = line.text.is_empty();
    let code = |n: usize| -> Pep8Code {
        match (n, comment) {
            (1, false) => Pep8Code::E111,
            (2, false) => Pep8Code::E112,
            (3, false) => Pep8Code::E113,
            (1, true) => Pep8Code::E114,
            (2, true) => Pep8Code::E115,
            (3, true) => Pep8Code::E116,
            _ => Pep8Code::E117,
        }
    };
    if !c.indent_level.is_multiple_of(INDENT_SIZE as usize) {
        found.push((Offset::In(0), code(1)));
    }
    let indent_expect = c.previous_logical.ends_with(':');
    if indent_expect && c.indent_level <= c.previous_indent_level {
        found.push((Offset::In(0), code(2)));
    } else if !indent_expect && c.indent_level > c.previous_indent_level {
        found.push((Offset::In(0), code(3)));
    }
    if indent_expect {
        let amount = if c.indent_char == Some('\t') { 8 } else { 4 };
        if c.indent_level > c.previous_indent_level + amount {
            found.push((Offset::In(0), Pep8Code::E117));
        }
    }
}

/// A value of pycodestyle's `indent_chances` (and of `visual_indent`, which reads them): `True`, the type `str`
/// (strings and comments), or an operator's text.
#[derive(Debug, Clone, PartialEq)]
enum Chance {
    Yes,
    Str,
    Text(String),
}

/// `visual_indent`: `False`, `None` or a chance.
#[derive(Debug, Clone, PartialEq)]
enum Visual {
    False,
    None,
    Chance(Chance),
}

impl Visual {
    fn truthy(&self) -> bool {
        match self {
            Visual::False | Visual::None => false,
            Visual::Chance(Chance::Text(t)) => !t.is_empty(),
            Visual::Chance(_) => true,
        }
    }
}

// Branch for branch as pycodestyle writes it, empty and repeated branches included.
#[allow(clippy::if_same_then_else)]
pub fn continued_indentation(line: &Logical, c: &Checker, found: &mut Found) {
    let tokens = line.tokens;
    let (Some(first), Some(last)) = (tokens.first(), tokens.last()) else { return };
    let first_row = first.start.0 as i64;
    let nrows = 1 + last.start.0 as i64 - first_row;
    if line.noqa || nrows == 1 {
        return;
    }
    let nrows = nrows.max(1) as usize;
    let indent_level = c.indent_level as i64;
    let indent_next = line.text.ends_with(':');
    let valid_hangs: &[i64] =
        if c.indent_char != Some('\t') { &[INDENT_SIZE] } else { &[INDENT_SIZE, INDENT_SIZE * 2] };
    let (mut row, mut depth) = (0usize, 0usize);
    let mut parens = vec![0i64; nrows];
    let mut rel_indent = vec![0i64; nrows];
    let mut open_rows: Vec<Vec<usize>> = vec![vec![0]];
    let mut hangs: Vec<Option<i64>> = vec![None];
    let mut indent_chances: HashMap<i64, Chance> = HashMap::new();
    let mut last_indent = first.start;
    let mut visual_indent = Visual::None;
    let mut last_token_multiline = false;
    let mut indent: Vec<i64> = vec![last_indent.1 as i64];
    let mut hang: i64 = 0;
    let mut hanging_indent = false;
    for token in tokens {
        let (text, start, end) = (token.text.as_str(), token.start, token.end);
        let mut newline = (row as i64) < start.0 as i64 - first_row;
        if newline {
            row = (start.0 as i64 - first_row) as usize;
            newline = !last_token_multiline && !matches!(token.kind, Kind::Nl | Kind::Newline);
        }
        if newline && row < nrows {
            last_indent = start;
            rel_indent[row] = expand_indent(&token.line) as i64 - indent_level;
            let close_bracket = token.kind == Kind::Op && within(text, "]})");
            for &open_row in open_rows[depth].iter().rev() {
                hang = rel_indent[row] - rel_indent[open_row];
                hanging_indent = valid_hangs.contains(&hang);
                if hanging_indent {
                    break;
                }
            }
            if let Some(h) = hangs[depth].filter(|&h| h != 0) {
                hanging_indent = hang == h;
            }
            visual_indent = if close_bracket || hang <= 0 {
                Visual::False
            } else {
                indent_chances.get(&(start.1 as i64)).cloned().map_or(Visual::None, Visual::Chance)
            };
            let col = start.1 as i64;
            if close_bracket && indent[depth] != 0 {
                if col != indent[depth] {
                    found.push((Offset::At(start.0, start.1), Pep8Code::E124));
                }
            } else if close_bracket && hang == 0 {
                // E133 only with hang_closing.
            } else if indent[depth] != 0 && col < indent[depth] {
                if visual_indent != Visual::Chance(Chance::Yes) {
                    found.push((Offset::At(start.0, start.1), Pep8Code::E128));
                }
            } else if hanging_indent || (indent_next && rel_indent[row] == 2 * INDENT_SIZE) {
                if close_bracket {
                    found.push((Offset::At(start.0, start.1), Pep8Code::E123));
                }
                hangs[depth] = Some(hang);
            } else if visual_indent == Visual::Chance(Chance::Yes) {
                indent[depth] = col;
            } else if matches!(&visual_indent, Visual::Chance(Chance::Str))
                || visual_indent == Visual::Chance(Chance::Text(text.to_owned()))
            {
            } else {
                let code = if hang <= 0 {
                    Pep8Code::E122
                } else if indent[depth] != 0 {
                    Pep8Code::E127
                } else if !close_bracket && hangs[depth].is_some_and(|h| h != 0) {
                    Pep8Code::E131
                } else {
                    hangs[depth] = Some(hang);
                    if hang > INDENT_SIZE { Pep8Code::E126 } else { Pep8Code::E121 }
                };
                found.push((Offset::At(start.0, start.1), code));
            }
        }
        if row < nrows && parens[row] != 0 && !matches!(token.kind, Kind::Nl | Kind::Comment) && indent[depth] == 0 {
            indent[depth] = start.1 as i64;
            indent_chances.insert(start.1 as i64, Chance::Yes);
        } else if matches!(token.kind, Kind::String | Kind::Comment | Kind::FStringStart | Kind::TStringStart) {
            indent_chances.insert(start.1 as i64, Chance::Str);
        } else if row == 0 && depth == 0 && matches!(text, "assert" | "raise" | "with") {
            indent_chances.insert(end.1 as i64 + 1, Chance::Yes);
        } else if indent_chances.is_empty() && row == 0 && depth == 0 && text == "if" {
            indent_chances.insert(end.1 as i64 + 1, Chance::Yes);
        } else if text == ":" && {
            let rest = slice_chars(&token.line, end.1.into(), i64::MAX);
            !rest.is_empty() && rest.chars().all(is_py_whitespace)
        } {
            open_rows[depth].push(row);
        }
        if token.kind == Kind::Op {
            if within(text, "([{") {
                depth += 1;
                indent.push(0);
                hangs.push(None);
                if open_rows.len() == depth {
                    open_rows.push(Vec::new());
                }
                open_rows[depth].push(row);
                if row < nrows {
                    parens[row] += 1;
                }
            } else if within(text, ")]}") && depth > 0 {
                let popped = indent.pop().unwrap_or(0);
                let prev_indent = if popped != 0 { popped } else { last_indent.1 as i64 };
                hangs.pop();
                for d in indent.iter_mut().take(depth) {
                    if *d > prev_indent {
                        *d = 0;
                    }
                }
                indent_chances.retain(|&ind, _| ind < prev_indent);
                open_rows.truncate(depth + 1);
                depth -= 1;
                if depth > 0 {
                    indent_chances.insert(indent[depth], Chance::Yes);
                }
                for idx in (0..=row.min(nrows - 1)).rev() {
                    if parens[idx] != 0 {
                        parens[idx] -= 1;
                        break;
                    }
                }
            }
            indent_chances.entry(start.1 as i64).or_insert_with(|| Chance::Text(text.to_owned()));
        }
        last_token_multiline = start.0 != end.0;
        if last_token_multiline {
            let at = end.0 as i64 - first_row;
            if (0..nrows as i64).contains(&at) && row < nrows {
                rel_indent[at as usize] = rel_indent[row];
            }
        }
    }
    if indent_next && expand_indent(&last.line) as i64 == indent_level + INDENT_SIZE {
        let code = if visual_indent.truthy() { Pep8Code::E129 } else { Pep8Code::E125 };
        found.push((Offset::At(last.start.0, (indent[0] + INDENT_SIZE) as i32), code));
    }
}
