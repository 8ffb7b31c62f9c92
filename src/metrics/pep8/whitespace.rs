//! Whitespace around brackets, operators, keywords, parameters and comments: E201–E275 (E226 is ignored by
//! default and not counted; E241/E242's check never runs under the default options).

use std::sync::LazyLock;

use super::Kind;
use super::blank_lines::STARTSWITH_DEF;
use super::logical::{Found, Logical, Offset, is_keyword, is_pycodestyle_keyword, is_soft_keyword};
use super::text::{Anchored, char_at, char_offset, has_spacing_run, is_py_whitespace, regex, slice_chars, within};
use crate::records::Pep8Code;

static WHITESPACE_AFTER_DECORATOR: Anchored = Anchored { starts: "@", regex: LazyLock::new(|| regex(r"^@\s")) };
// The two `finditer` patterns have no look-around: the `regex` crate's engines match them as Python's `re` does
// (leftmost-first, the same groups), far faster than fancy-regex's VM.
static KEYWORD: LazyLock<regex::Regex> = LazyLock::new(|| {
    let keywords = [
        "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif", "else", "except",
        "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass",
        "raise", "return", "try", "while", "with", "yield", "print",
    ];
    regex::Regex::new(&format!(r"(\s*)\b(?:{})\b(\s*)", keywords.join("|"))).expect("a valid pattern")
});
static OPERATOR: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"(?:[^,\s])(\s*)(?:[-+*/|!<=>%&^]+|:=)(\s*)").expect("a valid pattern"));
static STARTSWITH_GENERIC: Anchored =
    Anchored { starts: "adct", regex: LazyLock::new(|| regex(r"^(async\s+def|def|class|type)\s+\w+\[")) };

const ARITHMETIC_OP: [&str; 7] = ["**", "*", "/", "//", "+", "-", "@"];
const WS_OPTIONAL_OPERATORS: [&str; 13] = ["**", "*", "/", "//", "+", "-", "@", "^", "&", "|", "<<", ">>", "%"];
const WS_NEEDED_OPERATORS: [&str; 25] = [
    "**=", "*=", "/=", "//=", "+=", "-=", "!=", "<", ">", "%=", "^=", "&=", "|=", "==", "<=", ">=", "<<=", ">>=", "=",
    "and", "in", "is", "or", "->", ":=",
];
const UNARY_OPERATORS: [&str; 5] = [">>", "**", "*", "+", "-"];

/// pycodestyle's `WHITESPACE` set.
fn is_blank(s: &str) -> bool {
    matches!(s, " " | "\t" | "\u{a0}")
}

/// pycodestyle's `EXTRANEOUS_WHITESPACE_REGEX`, `[\[({][ \t]|[ \t][\]}),;:](?!=)`, matched by hand: every
/// character in it is ASCII, so bytes stand for characters; `finditer`'s matches are two bytes and never overlap.
pub fn extraneous_whitespace(line: &Logical, found: &mut Found) {
    let text = line.text;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        let (c, d) = (bytes[i], bytes[i + 1]);
        let opening = b"[({".contains(&c) && matches!(d, b' ' | b'\t');
        let closing = matches!(c, b' ' | b'\t') && b"]}),;:".contains(&d) && bytes.get(i + 2) != Some(&b'=');
        if !(opening || closing) {
            i += 1;
            continue;
        }
        let at = char_offset(text, i);
        if opening {
            found.push((Offset::In(at + 1), Pep8Code::E201));
        } else if char_at(text, at as i64 - 1) != Some(',') {
            found.push((Offset::In(at), if b"}])".contains(&d) { Pep8Code::E202 } else { Pep8Code::E203 }));
        }
        i += 2;
    }
    if WHITESPACE_AFTER_DECORATOR.is_match(text) {
        found.push((Offset::In(1), Pep8Code::E204));
    }
}

pub fn whitespace_around_keywords(line: &Logical, found: &mut Found) {
    spaces_around(line.text, &KEYWORD, [Pep8Code::E274, Pep8Code::E272, Pep8Code::E273, Pep8Code::E271], found);
}

pub fn whitespace_around_operator(line: &Logical, found: &mut Found) {
    spaces_around(line.text, &OPERATOR, [Pep8Code::E223, Pep8Code::E221, Pep8Code::E224, Pep8Code::E222], found);
}

/// The two groups of `regex` around a keyword or operator: a tab, or more than one space, before and after.
fn spaces_around(
    text: &str,
    regex: &regex::Regex,
    [tab_before, before, tab_after, after]: [Pep8Code; 4],
    found: &mut Found,
) {
    if !has_spacing_run(text) {
        return;
    }
    for caps in regex.captures_iter(text) {
        let (Some(b), Some(a)) = (caps.get(1), caps.get(2)) else { continue };
        if b.as_str().contains('\t') {
            found.push((Offset::In(char_offset(text, b.start())), tab_before));
        } else if b.as_str().chars().count() > 1 {
            found.push((Offset::In(char_offset(text, b.start())), before));
        }
        if a.as_str().contains('\t') {
            found.push((Offset::In(char_offset(text, a.start())), tab_after));
        } else if a.as_str().chars().count() > 1 {
            found.push((Offset::In(char_offset(text, a.start())), after));
        }
    }
}

pub fn missing_whitespace_after_keyword(line: &Logical, found: &mut Found) {
    for pair in line.tokens.windows(2) {
        let (t0, t1) = (&pair[0], &pair[1]);
        if t0.end == t1.start
            && t0.kind == Kind::Name
            && is_keyword(&t0.text)
            && !matches!(t0.text.as_str(), "False" | "None" | "True")
            && !(t0.text == "except" && t1.text == "*")
            && !(t0.text == "yield" && t1.text == ")")
            && !within(&t1.text, ":\n")
        {
            found.push((Offset::At(t0.end.0, t0.end.1), Pep8Code::E275));
        }
    }
}

pub fn whitespace_before_parameters(line: &Logical, found: &mut Found) {
    let tokens = line.tokens;
    let Some(first) = tokens.first() else { return };
    let (mut prev_kind, mut prev_text, mut prev_end) = (first.kind, first.text.as_str(), first.end);
    for index in 1..tokens.len() {
        let token = &tokens[index];
        if token.kind == Kind::Op
            && within(&token.text, "([")
            && token.start != prev_end
            && (prev_kind == Kind::Name || within(prev_text, "}])"))
            && (index < 2 || tokens[index - 2].text != "class")
            && !is_keyword(prev_text)
            && (prev_text == "type" || !is_soft_keyword(prev_text))
        {
            found.push((Offset::At(prev_end.0, prev_end.1), Pep8Code::E211));
        }
        prev_kind = token.kind;
        prev_text = &token.text;
        prev_end = token.end;
    }
}

/// `missing_whitespace`'s `need_space`: `False`, `True`, or (where the operator started, whether it had a space
/// before it) while the side after it is not known yet.
#[derive(Clone, Copy, PartialEq)]
enum NeedSpace {
    No,
    Yes,
    After((u32, i32), bool),
}

// Branch for branch as pycodestyle writes it, empty and repeated branches included.
#[allow(clippy::if_same_then_else)]
pub fn missing_whitespace(line: &Logical, found: &mut Found) {
    let mut need_space = NeedSpace::No;
    let mut prev_kind = Kind::Op;
    let mut prev_text = "";
    let mut prev_end: Option<(u32, i32)> = None;
    let mut braces: Vec<char> = Vec::new();
    let top2 = |b: &[char], x: char| b.len() >= 2 && b[b.len() - 2] == x && b[b.len() - 1] == '{';
    for token in line.tokens {
        let text = token.text.as_str();
        let (kind, start, end) = (token.kind, token.start, token.end);
        if kind == Kind::Op && matches!(text, "[" | "(" | "{") {
            braces.push(text.chars().next().unwrap_or('('));
        } else if kind == Kind::FStringStart {
            braces.push('f');
        } else if kind == Kind::TStringStart {
            braces.push('t');
        } else if kind == Kind::Name && text == "lambda" {
            braces.push('l');
        } else if !braces.is_empty() {
            if (kind == Kind::Op && matches!(text, "]" | ")" | "}"))
                || matches!(kind, Kind::FStringEnd | Kind::TStringEnd)
            {
                braces.pop();
            } else if braces.last() == Some(&'l') && kind == Kind::Op && text == ":" {
                braces.pop();
            }
        }
        if matches!(kind, Kind::Nl | Kind::Newline | Kind::Indent | Kind::Dedent | Kind::Comment) {
            continue;
        }
        if kind == Kind::Op && matches!(text, "," | ";" | ":") {
            let next_char = slice_chars(&token.line, end.1.into(), i64::from(end.1) + 1);
            if !is_blank(next_char) && !within(next_char, "\r\n") {
                let exempt = (text == ":" && (braces.last() == Some(&'[') || top2(&braces, 'f') || top2(&braces, 't')))
                    || (text == "," && within(next_char, ")]"));
                if !exempt {
                    found.push((Offset::At(start.0, start.1), Pep8Code::E231));
                }
            }
        }
        if need_space != NeedSpace::No {
            if Some(start) != prev_end {
                if let NeedSpace::After(at, false) = need_space {
                    found.push((Offset::At(at.0, at.1), Pep8Code::E225));
                }
                need_space = NeedSpace::No;
            } else if (prev_text == "/" && matches!(text, "," | ")" | ":")) || (prev_text == ")" && text == ":") {
            } else {
                let prev = prev_end.unwrap_or((0, 0));
                match need_space {
                    NeedSpace::Yes | NeedSpace::After(_, true) => {
                        found.push((Offset::At(prev.0, prev.1), Pep8Code::E225))
                    }
                    NeedSpace::After(at, false) if prev_text != "**" => {
                        let code = if prev_text == "%" {
                            Pep8Code::E228
                        } else if !ARITHMETIC_OP.contains(&prev_text) {
                            Pep8Code::E227
                        } else {
                            Pep8Code::E226
                        };
                        found.push((Offset::At(at.0, at.1), code));
                    }
                    _ => {}
                }
                need_space = NeedSpace::No;
            }
        } else if matches!(kind, Kind::Op | Kind::Name)
            && let Some(prev) = prev_end
        {
            let mut unknown = false;
            if text == "=" && (matches!(braces.last(), Some('l' | '(')) || top2(&braces, 'f') || top2(&braces, 't')) {
            } else if WS_NEEDED_OPERATORS.contains(&text) {
                need_space = NeedSpace::Yes;
            } else if UNARY_OPERATORS.contains(&text) {
                if (prev_kind == Kind::Op && within(prev_text, "}])"))
                    || (prev_kind != Kind::Op && !is_pycodestyle_keyword(prev_text) && !is_soft_keyword(prev_text))
                {
                    unknown = true;
                }
            } else if WS_OPTIONAL_OPERATORS.contains(&text) {
                unknown = true;
            }
            if unknown {
                need_space = NeedSpace::After(prev, start != prev);
            } else if need_space == NeedSpace::Yes && start == prev {
                found.push((Offset::At(prev.0, prev.1), Pep8Code::E225));
                need_space = NeedSpace::No;
            }
        }
        prev_kind = kind;
        prev_text = text;
        prev_end = Some(end);
    }
}

pub fn whitespace_around_named_parameter_equals(line: &Logical, found: &mut Found) {
    let mut parens: Vec<&str> = Vec::new();
    let (mut no_space, mut require_space, mut annotated) = (false, false, false);
    let mut prev_end: Option<(u32, i32)> = None;
    let in_def = STARTSWITH_DEF.is_match(line.text);
    let in_generic = STARTSWITH_GENERIC.is_match(line.text);
    for token in line.tokens {
        if token.kind == Kind::Nl {
            continue;
        }
        let (text, start) = (token.text.as_str(), token.start);
        let prev = prev_end.unwrap_or((0, 0));
        if no_space {
            no_space = false;
            if Some(start) != prev_end {
                found.push((Offset::At(prev.0, prev.1), Pep8Code::E251));
            }
        }
        if require_space {
            require_space = false;
            if Some(start) == prev_end {
                found.push((Offset::At(prev.0, prev.1), Pep8Code::E252));
            }
        }
        if token.kind == Kind::Op {
            if within(text, "([") {
                parens.push(text);
            } else if within(text, ")]") && !parens.is_empty() {
                parens.pop();
            } else if text == ":" && in_def && parens == ["("] {
                annotated = true;
            } else if parens.len() == 1 && text == "," {
                annotated = false;
            } else if !parens.is_empty() && text == "=" {
                if (in_generic && parens == ["["]) || (annotated && parens == ["("]) {
                    require_space = true;
                    if Some(start) == prev_end {
                        found.push((Offset::At(prev.0, prev.1), Pep8Code::E252));
                    }
                } else {
                    no_space = true;
                    if Some(start) != prev_end {
                        found.push((Offset::At(prev.0, prev.1), Pep8Code::E251));
                    }
                }
            }
            if parens.is_empty() {
                annotated = false;
            }
        }
        prev_end = Some(token.end);
    }
}

pub fn whitespace_before_comment(line: &Logical, found: &mut Found) {
    let mut prev_end = (0u32, 0i32);
    for token in line.tokens {
        if token.kind == Kind::Comment {
            let start = token.start;
            let inline = !slice_chars(&token.line, 0, start.1.into()).trim_matches(is_py_whitespace).is_empty();
            if inline && prev_end.0 == start.0 && start.1 < prev_end.1 + 2 {
                found.push((Offset::At(prev_end.0, prev_end.1), Pep8Code::E261));
            }
            let (symbol, comment) = token.text.split_once(' ').unwrap_or((&token.text, ""));
            let bad_prefix = if within(symbol, "#:") {
                None
            } else {
                Some(symbol.trim_start_matches('#').chars().next().unwrap_or('#'))
            };
            let first = comment.chars().next().map(String::from).unwrap_or_default();
            if inline {
                if bad_prefix.is_some() || is_blank(&first) {
                    found.push((Offset::At(start.0, start.1), Pep8Code::E262));
                }
            } else if let Some(prefix) = bad_prefix
                && (prefix != '!' || start.0 > 1)
            {
                if prefix != '#' {
                    found.push((Offset::At(start.0, start.1), Pep8Code::E265));
                } else if !comment.is_empty() {
                    found.push((Offset::At(start.0, start.1), Pep8Code::E266));
                }
            }
        } else if token.kind != Kind::Nl {
            prev_end = token.end;
        }
    }
}
