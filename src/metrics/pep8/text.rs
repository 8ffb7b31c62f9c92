//! Python's string semantics where pycodestyle relies on them: character indices (negative from the end),
//! `str.isspace`, `expand_indent`, the `# noqa` marker.

use std::sync::LazyLock;

use fancy_regex::Regex;

/// Python's `str.isspace` for one character.
pub fn is_py_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// `s[i]` in Python: the character at index `i` (from the end when negative), if there is one.
pub fn char_at(s: &str, i: i64) -> Option<char> {
    if i >= 0 { s.chars().nth(i as usize) } else { s.chars().rev().nth((-i - 1) as usize) }
}

/// `s[start:end]` in Python: character bounds, negative ones counted from the end, clamped to the string.
pub fn slice_chars(s: &str, start: i64, end: i64) -> &str {
    let ascii = s.is_ascii();
    let count = if ascii { s.len() } else { s.chars().count() } as i64;
    let bound = |i: i64| (if i < 0 { i + count } else { i }).clamp(0, count) as usize;
    let byte = |chars: usize| if ascii { chars } else { s.char_indices().nth(chars).map_or(s.len(), |(b, _)| b) };
    let (start, end) = (byte(bound(start)), byte(bound(end)));
    if start < end { &s[start..end] } else { "" }
}

/// pycodestyle's `expand_indent`: the width of a line's indentation, tabs to multiples of 8.
pub fn expand_indent(line: &str) -> usize {
    let line = line.trim_end_matches(['\n', '\r']);
    if !line.contains('\t') {
        return line.chars().count() - line.trim_start_matches(is_py_whitespace).chars().count();
    }
    let mut width = 0;
    for c in line.chars() {
        match c {
            '\t' => width = width / 8 * 8 + 8,
            ' ' => width += 1,
            _ => break,
        }
    }
    width
}

/// Whether a line or comment holds pycodestyle's `# noqa` (or `# nopep8`), in any case.
pub fn noqa(text: &str) -> bool {
    static NOQA: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)# no(?:qa|pep8)\b"));
    // Most lines hold no `#`; the pattern needs one.
    text.contains('#') && matches(&NOQA, text)
}

/// One of pycodestyle's patterns anchored at the start (`^...`), with the characters a match can begin with
/// (after any whitespace): most logical lines begin with none of them, and testing that skips the regex engine.
pub struct Anchored {
    pub starts: &'static str,
    pub regex: LazyLock<Regex>,
}

impl Anchored {
    pub fn is_match(&self, text: &str) -> bool {
        text.trim_start_matches(char::is_whitespace).chars().next().is_some_and(|c| self.starts.contains(c))
            && matches(&self.regex, text)
    }
}

/// One of pycodestyle's patterns, compiled (once, behind a `LazyLock`).
pub fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("a valid pattern")
}

/// Whether `regex` matches in `text` (anchored where the pattern says `^`). A match that exceeds fancy-regex's
/// backtracking limit counts as none; pycodestyle's patterns on one logical line stay far below it.
pub fn matches(regex: &Regex, text: &str) -> bool {
    regex.is_match(text).unwrap_or(false)
}

/// Python's `text in chars` on strings: a substring test, so the empty text (of a DEDENT, a fake-newline NEWLINE
/// or an empty f-string MIDDLE) is in every string.
pub fn within(text: &str, chars: &str) -> bool {
    chars.contains(text)
}

/// Python's `str.isidentifier` (ASCII and the common Unicode letters).
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic()) && chars.all(|c| c == '_' || c.is_alphanumeric())
}

/// Whether `text` holds a tab or two whitespace characters in a row: what the spacing checks around keywords and
/// operators report on (their patterns' whitespace groups match nothing else worth reporting).
pub fn has_spacing_run(text: &str) -> bool {
    let mut previous_blank = false;
    for c in text.chars() {
        let blank = is_py_whitespace(c);
        if c == '\t' || (blank && previous_blank) {
            return true;
        }
        previous_blank = blank;
    }
    false
}

/// The character offset of byte offset `byte` in `s`.
pub fn char_offset(s: &str, byte: usize) -> usize {
    if s.is_ascii() { byte } else { s[..byte].chars().count() }
}
