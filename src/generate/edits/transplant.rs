//! Moving one student's real edit onto another student's code.
//!
//! The edit is the line diff between the analogue's attempt and its next one. Each changed hunk is located in
//! the target by its old lines (compared without surrounding whitespace and with the analogue's names mapped to
//! the target's), or, for a pure insertion, by the line before it; its new lines take the target's names and the
//! indentation of the place they land. Names are mapped by aligning the two programs' token streams with every
//! identifier made a wildcard: where the structure matches, the analogue's `lst` is the target's `liste`.

use std::collections::HashMap;

use similar::{Algorithm, DiffOp, capture_diff_slices};

/// A token of Python source, roughly: a name, or any other non-space character run that is not a name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Token<'a> {
    Name(&'a str),
    Other(&'a str),
}

const KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del",
    "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal",
    "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
];

/// The tokens of `text` with their byte ranges.
fn tokens(text: &str) -> Vec<(Token<'_>, std::ops::Range<usize>)> {
    let bytes = text.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] >= 0x80) {
                i += 1;
            }
            let word = &text[start..i];
            let token = if KEYWORDS.contains(&word) { Token::Other(word) } else { Token::Name(word) };
            out.push((token, start..i));
        } else {
            i += 1;
            while i < bytes.len() && !text.is_char_boundary(i) {
                i += 1;
            }
            out.push((Token::Other(&text[start..i]), start..i));
        }
    }
    out
}

/// The analogue's names → the target's, by majority over the aligned positions where both have a name.
fn name_map<'a>(analogue: &'a str, target: &'a str) -> HashMap<&'a str, &'a str> {
    let shape = |t: &[(Token<'a>, std::ops::Range<usize>)]| -> Vec<Token<'a>> {
        t.iter().map(|(tok, _)| if let Token::Name(_) = tok { Token::Name("") } else { tok.clone() }).collect()
    };
    let (a, b) = (tokens(analogue), tokens(target));
    let mut votes: HashMap<(&str, &str), usize> = HashMap::new();
    for op in capture_diff_slices(Algorithm::Myers, &shape(&a), &shape(&b)) {
        if let DiffOp::Equal { old_index, new_index, len } = op {
            for k in 0..len {
                if let (Token::Name(x), Token::Name(y)) = (&a[old_index + k].0, &b[new_index + k].0) {
                    *votes.entry((x, y)).or_default() += 1;
                }
            }
        }
    }
    let mut best: HashMap<&str, (&str, usize)> = HashMap::new();
    let mut ranked: Vec<((&str, &str), usize)> = votes.into_iter().collect();
    ranked.sort_unstable(); // ties go to the first name in order, whatever the hash order was
    for ((x, y), n) in ranked {
        let entry = best.entry(x).or_insert((y, n));
        if n > entry.1 {
            *entry = (y, n);
        }
    }
    best.into_iter().map(|(x, (y, _))| (x, y)).collect()
}

/// `line` with its names mapped.
fn rename(line: &str, names: &HashMap<&str, &str>) -> String {
    let mut out = String::with_capacity(line.len());
    let mut last = 0;
    for (token, range) in tokens(line) {
        if let Token::Name(name) = token
            && let Some(to) = names.get(name)
        {
            out.push_str(&line[last..range.start]);
            out.push_str(to);
            last = range.end;
        }
    }
    out.push_str(&line[last..]);
    out
}

fn indent(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
}

/// One indentation level of `code`: its shortest leading whitespace (four spaces when nothing is indented).
fn indent_unit(code: &str) -> &str {
    code.lines()
        .filter(|l| !l.trim().is_empty())
        .map(indent)
        .filter(|i| !i.is_empty())
        .min_by_key(|i| i.len())
        .unwrap_or("    ")
}

/// `line` at its own nesting depth, written with the target's indentation unit.
fn reindent(line: &str, from_unit: &str, to_unit: &str) -> String {
    if line.trim().is_empty() {
        return String::new();
    }
    let depth = indent(line).len().div_ceil(from_unit.len().max(1));
    format!("{}{}", to_unit.repeat(depth), line.trim_start())
}

/// The target with the analogue's edit (`before` → `after`) applied, or `None` when a hunk finds no place in
/// it or the edit changes nothing there.
pub fn transplant(before: &str, after: &str, target: &str) -> Option<String> {
    let (old, new): (Vec<&str>, Vec<&str>) = (before.lines().collect(), after.lines().collect());
    let mut lines: Vec<String> = target.lines().map(str::to_owned).collect();
    let names = name_map(before, target);
    let key = |line: &str| rename(line.trim(), &names);
    // Hunks from the last to the first, so that earlier positions in the target stay valid.
    let ops = capture_diff_slices(Algorithm::Myers, &old, &new);
    let mut hunks: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)> = ops
        .iter()
        .filter(|op| !matches!(op, DiffOp::Equal { .. }))
        .map(|op| (op.old_range(), op.new_range()))
        .collect();
    hunks.reverse();
    let (from_unit, to_unit) = (indent_unit(before), indent_unit(target).to_owned());
    let mut limit = lines.len();
    for (old_range, new_range) in hunks {
        let (at, len) = if old_range.is_empty() {
            // An insertion: after the target's copy of the line before it (or at the top).
            let at = match old_range.start.checked_sub(1) {
                Some(anchor) => find(&lines[..limit], &[key(old[anchor])])? + 1,
                None => 0,
            };
            (at, 0)
        } else {
            let wanted: Vec<String> = old[old_range.clone()].iter().map(|l| key(l)).collect();
            (find(&lines[..limit], &wanted)?, old_range.len())
        };
        let replacement: Vec<String> =
            new[new_range].iter().map(|l| reindent(&rename(l, &names), from_unit, &to_unit)).collect();
        lines.splice(at..at + len, replacement);
        limit = at;
    }
    let mut out = lines.join("\n");
    if target.ends_with('\n') {
        out.push('\n');
    }
    (out.trim_end() != target.trim_end()).then_some(out)
}

/// Where `wanted` (already keyed) starts among `lines` (trimmed); the last match, since hunks go bottom-up.
fn find(lines: &[String], wanted: &[String]) -> Option<usize> {
    if wanted.is_empty() || wanted.len() > lines.len() {
        return None;
    }
    (0..=lines.len() - wanted.len())
        .rev()
        .find(|&i| lines[i..i + wanted.len()].iter().zip(wanted).all(|(l, w)| l.trim() == w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_line_fix_moves_to_another_students_names() {
        let before = "def somme(lst):\n    s = 0\n    for x in lst:\n        s = x\n    return s\n";
        let after = "def somme(lst):\n    s = 0\n    for x in lst:\n        s = s + x\n    return s\n";
        let target = "def somme(liste):\n  total=0\n  for e in liste:\n    total = e\n  return total\n";
        let want = "def somme(liste):\n  total=0\n  for e in liste:\n    total = total + e\n  return total\n";
        assert_eq!(transplant(before, after, target).as_deref(), Some(want));
    }

    #[test]
    fn insertions_land_after_their_anchor_at_its_depth() {
        let before = "def f(a):\n    b = a * 2\n    return b\n";
        let after = "def f(a):\n    if a < 0:\n        return 0\n    b = a * 2\n    return b\n";
        let target = "def f(n):\n\tm = n * 2\n\treturn m\n";
        let want = "def f(n):\n\tif n < 0:\n\t\treturn 0\n\tm = n * 2\n\treturn m\n";
        assert_eq!(transplant(before, after, target).as_deref(), Some(want));
    }

    #[test]
    fn a_hunk_without_a_place_refuses() {
        let before = "def f(a):\n    return a\n";
        let after = "def f(a):\n    return a + 1\n";
        assert_eq!(transplant(before, after, "def g(x):\n    while True:\n        pass\n"), None);
        // An edit the target already has changes nothing there.
        assert_eq!(transplant(before, after, "def f(b):\n    return b + 1\n"), None);
    }

    #[test]
    fn names_follow_the_aligned_structure() {
        let names = name_map("for x in lst:\n    s = s + x", "for e in liste:\n    total = total + e");
        assert_eq!((names["x"], names["lst"], names["s"]), ("e", "liste", "total"));
    }
}
