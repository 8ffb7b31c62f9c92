//! pycodestyle's `Checker`: physical lines checked as the token stream reaches their ends, logical lines built
//! from tokens (strings muted, an offset map back to the source), each check run in pycodestyle's order (its
//! checks sorted by name), and what its default options ignore left out.

use std::borrow::Cow;

use super::lexer::tokenize;
use super::logical::{self, Logical};
use super::physical::{self, Physical};
use super::strings::Crashed;
use super::text::{char_at, expand_indent, noqa, slice_chars, within};
use super::{Kind, Token};
use crate::records::Pep8Code;
use crate::records::StyleProblem;

/// State a check keeps across the logical lines of one file (pycodestyle's `checker_state`).
#[derive(Debug, Default)]
pub struct ImportState {
    pub seen_non_imports: bool,
    pub seen_docstring: bool,
}

pub struct Checker<'a> {
    lines: &'a [String],
    found: Vec<StyleProblem>,
    /// How many lines the tokenizer has read: pycodestyle's `line_number`, where physical problems are reported.
    line_number: usize,
    pub indent_char: Option<char>,
    pub indent_level: usize,
    pub previous_indent_level: usize,
    pub previous_logical: String,
    pub previous_unindented_logical_line: String,
    pub blank_lines: usize,
    pub blank_before: usize,
    pub imports: ImportState,
    tokens: Vec<Token>,
    multiline: bool,
    fstring_start: u32,
    tstring_start: u32,
    noqa: bool,
}

/// What pycodestyle 2.14.0 with its default options counts in `lines` (as its `Checker(lines=...)` reads them).
pub fn check_lines(lines: &[String]) -> Vec<StyleProblem> {
    let mut checker = Checker {
        lines,
        found: Vec::new(),
        line_number: 0,
        indent_char: None,
        indent_level: 0,
        previous_indent_level: 0,
        previous_logical: String::new(),
        previous_unindented_logical_line: String::new(),
        blank_lines: 0,
        blank_before: 0,
        imports: ImportState::default(),
        tokens: Vec::new(),
        multiline: false,
        fstring_start: 0,
        tstring_start: 0,
        noqa: false,
    };
    // A check that crashes pycodestyle ends the file's checking, as an exception ends `check_all`.
    let _ = checker.check_all();
    checker.found
}

/// A logical line's map from offsets to source positions (row, column), as pycodestyle keeps it.
type OffsetMap = Vec<(usize, (u32, i32))>;

impl Checker<'_> {
    pub fn report(&mut self, line: usize, column: i64, code: Pep8Code) {
        if code.ignored_by_default() {
            return;
        }
        self.found.push(StyleProblem { line: line as i32, column: column as i32, code });
    }

    fn check_all(&mut self) -> Result<(), Crashed> {
        let refs: Vec<&str> = self.lines.iter().map(String::as_str).collect();
        let (tokens, error) = tokenize(&refs);
        let total = self.lines.len();
        let mut parens: i64 = 0;
        let mut prev_physical: std::sync::Arc<str> = "".into();
        let mut stopped_early = false;
        for token in tokens {
            if token.start.0 as usize > total {
                stopped_early = true;
                break;
            }
            self.read_through(&token);
            self.noqa = !token.line.is_empty() && noqa(&token.line);
            self.maybe_check_physical(&token, &prev_physical);
            prev_physical = token.line.clone();
            let kind = token.kind;
            let depth_change = match token.text.as_str() {
                "(" | "[" | "{" => 1,
                ")" | "]" | "}" => -1,
                _ => 0,
            };
            self.tokens.push(token);
            if kind == Kind::Op {
                parens += depth_change;
            } else if parens == 0 && matches!(kind, Kind::Newline | Kind::Nl) {
                if kind == Kind::Newline {
                    self.check_logical()?;
                    self.blank_before = 0;
                } else if self.tokens.len() == 1 {
                    self.blank_lines += 1;
                    self.tokens.clear();
                } else {
                    self.check_logical()?;
                }
            }
        }
        if let (Some(error), false) = (error, stopped_early) {
            self.read_to(error.lines_read);
            self.report(error.line.max(0) as usize, error.column.max(0).into(), Pep8Code::E901);
        }
        if !self.tokens.is_empty() {
            let lines = self.lines;
            self.check_physical(lines.last().map_or("", String::as_str));
            self.check_logical()?;
        }
        Ok(())
    }

    /// The tokenizer read every line up to the one this token ends on (or its `line` reaches).
    fn read_through(&mut self, token: &Token) {
        let line_rows = token.line.trim_end_matches('\n').matches('\n').count() as u32;
        self.read_to((token.end.0).max(token.start.0 + line_rows) as usize);
    }

    /// pycodestyle's `readline` up to line `last`: the first indented line read sets the indent character.
    fn read_to(&mut self, last: usize) {
        while self.line_number < last.min(self.lines.len()) {
            let line = &self.lines[self.line_number];
            self.line_number += 1;
            if self.indent_char.is_none()
                && let Some(c @ (' ' | '\t' | '\u{a0}')) = line.chars().next()
            {
                self.indent_char = Some(c);
            }
        }
    }

    fn maybe_check_physical(&mut self, token: &Token, prev_physical: &str) {
        match token.kind {
            Kind::FStringStart => self.fstring_start = token.start.0,
            Kind::TStringStart => self.tstring_start = token.start.0,
            _ if is_eol_token(token) => {
                self.check_physical(if token.line.is_empty() { prev_physical } else { &token.line });
            }
            Kind::String | Kind::FStringEnd | Kind::TStringEnd
                if token.kind != Kind::String || token.text.contains('\n') =>
            {
                if noqa(&token.line) {
                    return;
                }
                let start = match token.kind {
                    Kind::FStringEnd => self.fstring_start,
                    Kind::TStringEnd => self.tstring_start,
                    _ => token.start.0,
                } as usize;
                let end = token.end.0 as usize;
                self.multiline = true;
                self.line_number = start;
                for row in start..end {
                    let line = format!("{}\n", self.lines[row - 1]);
                    self.check_physical(&line);
                    self.line_number += 1;
                }
                self.multiline = false;
            }
            _ => {}
        }
    }

    fn check_physical(&mut self, line: &str) {
        let physical = Physical {
            line,
            line_number: self.line_number,
            total_lines: self.lines.len(),
            last_line: self.lines.last().map_or("", String::as_str),
            indent_char: self.indent_char,
            multiline: self.multiline,
            noqa: self.noqa,
        };
        for (column, code) in physical::checks(&physical) {
            self.report(self.line_number, column as i64, code);
            if code == Pep8Code::E101 {
                self.indent_char = line.chars().next();
            }
        }
    }

    /// pycodestyle's `build_tokens_line`: the logical line and its map from offsets to source positions. It
    /// crashes (`IndexError`) where a negative column reaches past the start of the previous token's line.
    fn build_tokens_line(&mut self) -> Result<(String, OffsetMap, bool), Crashed> {
        let mut logical = String::new();
        let mut comments = String::new();
        let mut length = 0usize;
        let mut mapping: OffsetMap = Vec::new();
        let mut prev: Option<(u32, i32)> = None;
        for token in &self.tokens {
            if matches!(token.kind, Kind::Newline | Kind::Nl | Kind::Indent | Kind::Dedent) {
                continue;
            }
            if mapping.is_empty() {
                mapping.push((0, token.start));
            }
            if token.kind == Kind::Comment {
                comments.push_str(&token.text);
                continue;
            }
            let mut end = token.end;
            let text: Cow<str> = match token.kind {
                Kind::String => mute_string(&token.text).into(),
                Kind::FStringMiddle | Kind::TStringMiddle => {
                    let braces = token.text.matches(['{', '}']).count();
                    end = (end.0, end.1 + braces as i32);
                    "x".repeat(token.text.chars().count() + braces).into()
                }
                _ => token.text.as_str().into(),
            };
            let mut before = "";
            if let Some((prev_row, prev_col)) = prev.filter(|&(row, _)| row != 0) {
                let (start_row, start_col) = token.start;
                if prev_row != start_row {
                    let prev_text = char_at(&self.lines[prev_row as usize - 1], prev_col as i64 - 1).ok_or(Crashed)?;
                    if prev_text == ',' || (!matches!(prev_text, '{' | '[' | '(') && !within(&text, "}])")) {
                        before = " ";
                    }
                } else if prev_col != start_col {
                    before = slice_chars(&token.line, prev_col.into(), start_col.into());
                }
            }
            length += before.chars().count() + text.chars().count();
            logical.push_str(before);
            logical.push_str(&text);
            mapping.push((length, end));
            prev = Some(end);
        }
        let noqa = !comments.is_empty() && noqa(&comments);
        Ok((logical, mapping, noqa))
    }

    fn check_logical(&mut self) -> Result<(), Crashed> {
        let (logical_line, mapping, noqa) = self.build_tokens_line()?;
        self.noqa = noqa;
        if mapping.is_empty() {
            return Ok(());
        }
        let (start_row, start_col) = mapping[0].1;
        let start_line = &self.lines[start_row as usize - 1];
        self.indent_level = expand_indent(slice_chars(start_line, 0, start_col.into()));
        if self.blank_before < self.blank_lines {
            self.blank_before = self.blank_lines;
        }
        let mut tokens = std::mem::take(&mut self.tokens);
        let line =
            Logical { text: &logical_line, tokens: &tokens, noqa, lines: self.lines, line_number: self.line_number };
        let (checked, crashed) = match logical::checks(&line, self) {
            Ok(found) => (found, false),
            Err(found) => (found, true),
        };
        for (offset, code) in checked {
            let (row, col) = match offset {
                logical::Offset::At(row, col) => (row as usize, col.into()),
                logical::Offset::In(offset) => {
                    let i = mapping.partition_point(|&(o, _)| o < offset).min(mapping.len() - 1);
                    let (token_offset, (row, col)) = mapping[i];
                    (row as usize, i64::from(col) + offset as i64 - token_offset as i64)
                }
            };
            self.report(row, col, code);
        }
        // The next logical line's tokens go into the same buffer.
        tokens.clear();
        self.tokens = tokens;
        if crashed {
            return Err(Crashed);
        }
        if !logical_line.is_empty() {
            self.previous_indent_level = self.indent_level;
            if self.indent_level == 0 {
                self.previous_unindented_logical_line.clone_from(&logical_line);
            }
            self.previous_logical = logical_line;
        }
        self.blank_lines = 0;
        Ok(())
    }
}

/// A NEWLINE or NL, or a token followed only by a line-continuation backslash.
fn is_eol_token(token: &Token) -> bool {
    matches!(token.kind, Kind::Newline | Kind::Nl)
        || slice_chars(&token.line, token.end.1.into(), i64::MAX).trim_start_matches(super::text::is_py_whitespace)
            == "\\\n"
}

/// pycodestyle's `mute_string`: a string literal's contents replaced by `x`, its prefix and quotes kept.
fn mute_string(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let Some(&quote) = chars.last() else { return String::new() };
    let mut start = chars.iter().position(|&c| c == quote).unwrap_or(0) + 1;
    let mut end = chars.len() - 1;
    if chars.len() >= 3 && chars[chars.len() - 3..].iter().all(|&c| c == quote) && (quote == '"' || quote == '\'') {
        start += 2;
        end = end.saturating_sub(2);
    }
    let mut out: String = chars[..start.min(chars.len())].iter().collect();
    out.extend(std::iter::repeat_n('x', end.saturating_sub(start)));
    out.extend(&chars[end.min(chars.len())..]);
    out
}
