//! pycodestyle's physical-line checks, in its order: `maximum_line_length`, `tabs_obsolete`, `tabs_or_spaces`,
//! `trailing_blank_lines`, `trailing_whitespace`.

use super::text::is_py_whitespace;
use crate::records::Pep8Code;

const MAX_LINE_LENGTH: usize = 79;

/// What the physical checks read of the checker's state.
pub struct Physical<'a> {
    pub line: &'a str,
    pub line_number: usize,
    pub total_lines: usize,
    pub last_line: &'a str,
    pub indent_char: Option<char>,
    pub multiline: bool,
    pub noqa: bool,
}

/// Every (column, code) the physical checks report for one line.
pub fn checks(p: &Physical) -> Vec<(usize, Pep8Code)> {
    let mut found = Vec::new();
    found.extend(maximum_line_length(p));
    let indent = &p.line[..p.line.len() - p.line.trim_start_matches([' ', '\t']).len()];
    if let Some(tab) = indent.find('\t') {
        found.push((tab, Pep8Code::W191));
    }
    // tabs_or_spaces compares with the indent character as it was before this line's E101 changes it.
    if let Some(offset) = indent.chars().position(|c| Some(c) != p.indent_char) {
        found.push((offset, Pep8Code::E101));
    }
    found.extend(trailing_blank_lines(p));
    found.extend(trailing_whitespace(p.line));
    found
}

fn maximum_line_length(p: &Physical) -> Option<(usize, Pep8Code)> {
    let line = p.line.trim_end_matches(is_py_whitespace);
    let length = line.chars().count();
    if length <= MAX_LINE_LENGTH || p.noqa {
        return None;
    }
    if p.line_number == 1 && line.starts_with("#!") {
        return None;
    }
    let chunks: Vec<&str> = line.split(is_py_whitespace).filter(|c| !c.is_empty()).collect();
    let special = (chunks.len() == 1 && p.multiline) || (chunks.len() == 2 && chunks[0] == "#");
    if special && length - chunks.last().map_or(0, |c| c.chars().count()) < MAX_LINE_LENGTH - 7 {
        return None;
    }
    Some((MAX_LINE_LENGTH, Pep8Code::E501))
}

fn trailing_blank_lines(p: &Physical) -> Option<(usize, Pep8Code)> {
    if p.line_number != p.total_lines {
        return None;
    }
    let stripped = p.line.trim_end_matches(['\r', '\n']);
    if !p.line.is_empty() && stripped.is_empty() {
        return Some((0, Pep8Code::W391));
    }
    if stripped == p.line {
        return Some((p.last_line.chars().count(), Pep8Code::W292));
    }
    None
}

fn trailing_whitespace(line: &str) -> Option<(usize, Pep8Code)> {
    let line = line.trim_end_matches(['\n', '\r', '\x0c']);
    let stripped = line.trim_end_matches([' ', '\t', '\x0b']);
    if line == stripped {
        return None;
    }
    if stripped.is_empty() { Some((0, Pep8Code::W293)) } else { Some((stripped.chars().count(), Pep8Code::W291)) }
}
