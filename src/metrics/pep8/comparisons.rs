//! Comparisons and names: E711–E714, E721, E722, E741–E743.

use std::sync::LazyLock;

use fancy_regex::Regex;

use super::logical::{Found, Logical, Offset};
use super::text::{Anchored, char_offset, is_identifier, regex, within};
use crate::records::Pep8Code;

static BLANK_EXCEPT: Anchored = Anchored { starts: "e", regex: LazyLock::new(|| regex(r"^except\s*:")) };
static COMPARE_NEGATIVE: LazyLock<Regex> = LazyLock::new(|| regex(r"\b(?<!is\s)(not)\s+[^\]\[)(}{ ]+\s+(in|is)\s"));
static COMPARE_SINGLETON: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(\bNone|\bFalse|\bTrue)?\s*([=!]=)\s*(?(1)|(None|False|True))\b"));
static COMPARE_TYPE: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"[=!]=\s+type(?:\s*\(\s*([^)]*[^\s)])\s*\))|(?<!\.)\btype(?:\s*\(\s*([^)]*[^\s)])\s*\))\s+[=!]=")
});

fn ambiguous(text: &str) -> bool {
    matches!(text, "l" | "O" | "I")
}

pub fn ambiguous_identifier(line: &Logical, found: &mut Found) {
    let tokens = line.tokens;
    let Some(first) = tokens.first() else { return };
    let mut func_depth: Option<i64> = None;
    let mut seen_colon = false;
    let mut brace_depth: i64 = 0;
    let (mut prev_text, mut prev_start) = (first.text.as_str(), first.start);
    for index in 1..tokens.len() {
        let token = &tokens[index];
        let (text, start) = (token.text.as_str(), token.start);
        let mut ident: Option<(&str, (u32, i32))> = None;
        if prev_text == "def" || prev_text == "lambda" {
            func_depth = Some(brace_depth);
            seen_colon = false;
        } else if func_depth.is_some() && text == ":" && Some(brace_depth) == func_depth {
            seen_colon = true;
        }
        if within(text, "([{") {
            brace_depth += 1;
        } else if within(text, ")]}") {
            brace_depth -= 1;
        }
        if (text == ":=" || (text == "=" && brace_depth == 0)) && ambiguous(prev_text) {
            ident = Some((prev_text, prev_start));
        }
        if matches!(prev_text, "as" | "for" | "global" | "nonlocal") && ambiguous(text) {
            ident = Some((text, start));
        }
        if func_depth.is_some()
            && !seen_colon
            && index < tokens.len() - 1
            && within(&tokens[index + 1].text, ":,=)")
            && matches!(prev_text, "lambda" | "," | "*" | "**" | "(")
            && ambiguous(text)
        {
            ident = Some((text, start));
        }
        if prev_text == "class" && ambiguous(text) {
            found.push((Offset::At(start.0, start.1), Pep8Code::E742));
        }
        if prev_text == "def" && ambiguous(text) {
            found.push((Offset::At(start.0, start.1), Pep8Code::E743));
        }
        if let Some((_, pos)) = ident {
            found.push((Offset::At(pos.0, pos.1), Pep8Code::E741));
        }
        prev_text = text;
        prev_start = start;
    }
}

pub fn bare_except(line: &Logical, found: &mut Found) {
    if !line.noqa && BLANK_EXCEPT.is_match(line.text) {
        found.push((Offset::In(0), Pep8Code::E722));
    }
}

// Each pattern below needs a literal that most lines lack; testing for it first skips fancy-regex's
// backtracking VM on those lines.

pub fn comparison_negative(line: &Logical, found: &mut Found) {
    if line.text.contains("not")
        && let Ok(Some(caps)) = COMPARE_NEGATIVE.captures(line.text)
        && let (Some(not), Some(op)) = (caps.get(1), caps.get(2))
    {
        let code = if op.as_str() == "in" { Pep8Code::E713 } else { Pep8Code::E714 };
        found.push((Offset::In(char_offset(line.text, not.start())), code));
    }
}

pub fn comparison_to_singleton(line: &Logical, found: &mut Found) {
    let text = line.text;
    // A match needs an operator and a singleton (before it, or after it when none is before).
    if line.noqa
        || !(text.contains("==") || text.contains("!="))
        || !["None", "False", "True"].iter().any(|s| text.contains(s))
    {
        return;
    }
    for caps in COMPARE_SINGLETON.captures_iter(line.text).flatten() {
        let singleton = caps.get(1).or(caps.get(3)).map_or("", |m| m.as_str());
        let Some(op) = caps.get(2) else { continue };
        let code = if singleton == "None" { Pep8Code::E711 } else { Pep8Code::E712 };
        found.push((Offset::In(char_offset(line.text, op.start())), code));
    }
}

pub fn comparison_type(line: &Logical, found: &mut Found) {
    if !line.text.contains("type") {
        return;
    }
    let Ok(Some(caps)) = COMPARE_TYPE.captures(line.text) else { return };
    if line.noqa {
        return;
    }
    if let Some(inst) = caps.get(1).map(|m| m.as_str())
        && is_identifier(inst)
        && !matches!(inst, "False" | "None" | "True")
    {
        return;
    }
    let start = caps.get(0).map_or(0, |m| m.start());
    found.push((Offset::In(char_offset(line.text, start)), Pep8Code::E721));
}
