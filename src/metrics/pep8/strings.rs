//! Escape sequences: W605.

use super::Kind;
use super::logical::{Found, Logical, Offset};
use crate::records::Pep8Code;

const VALID: &str = "\n\\'\"abfnrtv01234567xNuU";

/// pycodestyle raising in the middle of a check: it found nothing more in that file.
#[derive(Debug)]
pub struct Crashed;

/// Errs where pycodestyle 2.14.0 raises `IndexError`: an f-string literal part that ends in a backslash (the
/// backslash before a brace in `f"\{x}"`), whose next character it reads past the end.
pub fn invalid_escape_sequence(line: &Logical, found: &mut Found) -> Result<(), Crashed> {
    if line.noqa {
        return Ok(());
    }
    let mut prefixes: Vec<String> = Vec::new();
    for token in line.tokens {
        if matches!(token.kind, Kind::String | Kind::FStringStart | Kind::TStringStart) {
            let quote = token.text.chars().last().unwrap_or('"');
            let prefix: String = token.text.chars().take_while(|&c| c != quote).collect();
            prefixes.push(prefix.to_lowercase());
        }
        if matches!(token.kind, Kind::String | Kind::FStringMiddle | Kind::TStringMiddle)
            && !prefixes.last().is_some_and(|p| p.contains('r'))
        {
            let text: Vec<char> = token.text.chars().collect();
            let (start_line, start_col) = token.start;
            let mut pos = text.iter().position(|&c| c == '\\');
            while let Some(at) = pos {
                let escaped = at + 1;
                let c = *text.get(escaped).ok_or(Crashed)?;
                if !VALID.contains(c) {
                    let newlines = text[..escaped].iter().filter(|&&c| c == '\n').count() as u32;
                    let line_no = start_line + newlines;
                    let col = if newlines == 0 {
                        start_col as i64 + escaped as i64
                    } else {
                        let last_newline = text[..escaped].iter().rposition(|&c| c == '\n').unwrap_or(0);
                        escaped as i64 - last_newline as i64 - 1
                    };
                    found.push((Offset::At(line_no, (col - 1) as i32), Pep8Code::W605));
                }
                pos = text.iter().skip(escaped + 1).position(|&c| c == '\\').map(|i| i + escaped + 1);
            }
        }
        if matches!(token.kind, Kind::String | Kind::FStringEnd | Kind::TStringEnd) {
            prefixes.pop();
        }
    }
    Ok(())
}
