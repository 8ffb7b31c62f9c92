//! A submission file's bytes decoded as CPython decodes a source file (PEP 263): UTF-8 by default, a UTF-8 byte
//! order mark dropped, or the encoding a coding declaration on line 1 or 2 names. What CPython refuses to decode
//! becomes its own `SyntaxError`, so a Latin-1 file is a `compile` result like any other, not a failed batch.

use std::borrow::Cow;

/// Why a file's bytes are not Python source: CPython's `SyntaxError` message and the line it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecodable {
    pub line: u32,
    pub message: String,
}

const BOM: &[u8] = b"\xef\xbb\xbf";

/// `bytes` as text, the way CPython reads a file named `file` (the name only goes into the message).
pub fn decode(bytes: &[u8], file: &str) -> Result<String, Undecodable> {
    let (bom, body) = match bytes.strip_prefix(BOM) {
        Some(rest) => (true, rest),
        None => (false, bytes),
    };
    let declared = coding_declaration(body);
    let encoding = declared.as_deref().map(normal_name);
    match encoding.as_deref() {
        None | Some("utf-8") => utf8(body, file),
        Some(other) if bom => {
            Err(Undecodable { line: declaration_line(body), message: format!("encoding problem: {other} with BOM") })
        }
        Some("iso-8859-1") => Ok(body.iter().map(|&b| char::from(b)).collect()),
        Some(other) => match encoding_rs::Encoding::for_label_no_replacement(other.as_bytes()) {
            Some(codec) => {
                let (text, had_errors) = codec.decode_without_bom_handling(body);
                if had_errors {
                    Err(Undecodable {
                        line: 1,
                        message: format!("(unicode error) '{other}' codec can't decode the file"),
                    })
                } else {
                    Ok(text.into_owned())
                }
            }
            None => Err(Undecodable { line: declaration_line(body), message: format!("encoding problem: {other}") }),
        },
    }
}

fn utf8(body: &[u8], file: &str) -> Result<String, Undecodable> {
    std::str::from_utf8(body).map(str::to_owned).map_err(|e| {
        let at = e.valid_up_to();
        Undecodable {
            line: line_of(body, at),
            message: format!(
                "Non-UTF-8 code starting with '\\x{:02x}' in file {file} on line {}, but no encoding declared; \
                 see https://peps.python.org/pep-0263/ for details",
                body[at],
                line_of(body, at)
            ),
        }
    })
}

fn line_of(bytes: &[u8], offset: usize) -> u32 {
    bytes[..offset].iter().filter(|&&b| b == b'\n').count() as u32 + 1
}

/// The encoding a PEP 263 declaration names (`# -*- coding: latin-1 -*-`): on line 1, or on line 2 when line 1
/// holds only a comment or nothing, as CPython's tokenizer looks for it.
fn coding_declaration(body: &[u8]) -> Option<String> {
    let mut lines = body.split(|&b| b == b'\n');
    let first = lines.next()?;
    if let Some(name) = declared_in(first) {
        return Some(name);
    }
    let first = trim_start(first);
    if first.is_empty() || first.starts_with(b"#") || first == b"\r" {
        return lines.next().and_then(declared_in);
    }
    None
}

fn declaration_line(body: &[u8]) -> u32 {
    match body.split(|&b| b == b'\n').next().and_then(declared_in) {
        Some(_) => 1,
        None => 2,
    }
}

/// The name in `coding[:=] NAME` on a comment-only line: `^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)`.
fn declared_in(line: &[u8]) -> Option<String> {
    let line = trim_start(line);
    let comment = line.strip_prefix(b"#")?;
    let text: Cow<str> = String::from_utf8_lossy(comment);
    let at = text.find("coding")?;
    let after = &text[at + "coding".len()..];
    let after = after.strip_prefix(':').or_else(|| after.strip_prefix('='))?;
    let name: String = after
        .trim_start_matches([' ', '\t'])
        .chars()
        .take_while(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    (!name.is_empty()).then_some(name)
}

fn trim_start(line: &[u8]) -> &[u8] {
    let start = line.iter().position(|b| !matches!(b, b' ' | b'\t' | b'\x0c')).unwrap_or(line.len());
    &line[start..]
}

/// CPython's `get_normal_name`: the spellings of UTF-8 and Latin-1 it folds before looking a codec up.
fn normal_name(name: &str) -> String {
    let lower = name.to_ascii_lowercase().replace('_', "-");
    let is = |base: &str| lower == base || lower.strip_prefix(base).is_some_and(|rest| rest.starts_with('-'));
    if is("utf-8") {
        "utf-8".into()
    } else if is("latin-1") || is("iso-8859-1") || is("iso-latin-1") || lower == "latin1" {
        "iso-8859-1".into()
    } else {
        lower
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_passes_and_a_bom_is_dropped() {
        assert_eq!(decode("x = 'é'\n".as_bytes(), "a.py").unwrap(), "x = 'é'\n");
        assert_eq!(decode(b"\xef\xbb\xbfprint(1)\n", "a.py").unwrap(), "print(1)\n");
    }

    #[test]
    fn latin1_without_a_declaration_is_cpythons_syntax_error_on_its_line() {
        let err = decode(b"def f():\n    return '\xe9'\n", "subs/latin1.py").unwrap_err();
        assert_eq!(err.line, 2);
        // The message CPython 3.11-3.14 prints for `python3 subs/latin1.py`.
        assert_eq!(
            err.message,
            "Non-UTF-8 code starting with '\\xe9' in file subs/latin1.py on line 2, but no encoding declared; \
             see https://peps.python.org/pep-0263/ for details"
        );
    }

    #[test]
    fn a_declared_encoding_decodes_as_cpython_would() {
        assert_eq!(
            decode(b"# -*- coding: latin-1 -*-\nx = '\xe9'\n", "a.py").unwrap(),
            "# -*- coding: latin-1 -*-\nx = 'é'\n"
        );
        // line 2 counts when line 1 is only a comment
        assert!(decode(b"#!/usr/bin/env python\n# coding=iso-8859-1\n'\xe9'\n", "a.py").unwrap().ends_with("'é'\n"));
        // ... but not after code
        assert_eq!(decode(b"x = 1\n# coding: latin-1\n'\xe9'\n", "a.py").unwrap_err().line, 3);
        assert_eq!(decode(b"# coding: cp1252\nx = '\x80'\n", "a.py").unwrap(), "# coding: cp1252\nx = '€'\n");
    }

    #[test]
    fn an_unknown_encoding_is_an_encoding_problem() {
        let err = decode(b"# coding: foo\nprint(1)\n", "a.py").unwrap_err();
        assert_eq!(err, Undecodable { line: 1, message: "encoding problem: foo".into() });
        let err = decode(b"\xef\xbb\xbf# coding: latin-1\nprint(1)\n", "a.py").unwrap_err();
        assert_eq!(err.message, "encoding problem: iso-8859-1 with BOM");
    }
}
