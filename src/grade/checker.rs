//! CPython's `doctest.OutputChecker.check_output` with no option flags, and doctest's exception matching.
//!
//! The host runs this itself on what the guest observed, so nothing a submission does inside the guest can
//! decide that an example passed.

/// Whether `got` matches `want` the way doctest's default checker decides it.
pub fn check_output(want: &str, got: &str) -> bool {
    let want = to_ascii(want);
    let got = to_ascii(got);
    if got == want {
        return true;
    }
    // doctest still accepts the pre-2.3 spellings of booleans (DONT_ACCEPT_TRUE_FOR_1 is off).
    if (got.as_str(), want.as_str()) == ("True\n", "1\n") || (got.as_str(), want.as_str()) == ("False\n", "0\n") {
        return true;
    }
    // `<BLANKLINE>` in want stands for an empty line; a got line of only spaces counts as empty.
    let want = map_lines(&want, |line| match line.strip_prefix("<BLANKLINE>") {
        Some(rest) if rest.chars().all(is_py_space) => "",
        _ => line,
    });
    let got = map_lines(&got, |line| if !line.is_empty() && line.chars().all(is_py_space) { "" } else { line });
    got == want
}

/// The exception class name an expected exception message names: `ValueError` for both
/// `ValueError: bad` and `mod.ValueError: bad`.
pub fn expected_exception_type(exc_msg: &str) -> &str {
    let head = exc_msg.lines().next().unwrap_or("");
    let head = head.split_once(':').map_or(head, |(name, _)| name).trim();
    head.rsplit('.').next().unwrap_or(head)
}

/// Python's `s.encode("ascii", "backslashreplace").decode("ascii")`.
fn to_ascii(s: &str) -> String {
    if s.is_ascii() {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match u32::from(c) {
            0..=0x7f => out.push(c),
            n @ 0x80..=0xff => out.push_str(&format!("\\x{n:02x}")),
            n @ 0x100..=0xffff => out.push_str(&format!("\\u{n:04x}")),
            n => out.push_str(&format!("\\U{n:08x}")),
        }
    }
    out
}

/// Python's `str.isspace` for one character, minus the newline (the `[^\S\n]` class doctest uses).
fn is_py_space(c: char) -> bool {
    c != '\n' && (c.is_whitespace() || ('\x1c'..='\x1f').contains(&c))
}

fn map_lines<'a>(text: &'a str, f: impl Fn(&'a str) -> &'a str) -> String {
    text.split('\n').map(f).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_boolean_spellings() {
        assert!(check_output("3\n", "3\n"));
        assert!(!check_output("3\n", "3.0\n"));
        assert!(check_output("1\n", "True\n"));
        assert!(check_output("0\n", "False\n"));
        assert!(!check_output("True\n", "1\n"));
        assert!(!check_output("[1, 2]\n", "[1,2]\n"));
    }

    #[test]
    fn blankline_marker_and_space_only_lines() {
        assert!(check_output("a\n<BLANKLINE>\nb\n", "a\n\nb\n"));
        assert!(check_output("a\n<BLANKLINE>\nb\n", "a\n   \nb\n"));
        assert!(!check_output("a\n\nb\n", "a\nb\n"));
        assert!(!check_output("a\n", "a \n"), "trailing spaces after text still differ");
    }

    #[test]
    fn non_ascii_compares_escaped() {
        assert!(check_output("'caf\\xe9'\n", "'café'\n"));
        assert!(check_output("'é'\n", "'é'\n"));
    }

    #[test]
    fn exception_type_from_message() {
        assert_eq!(expected_exception_type("ValueError: bad\n"), "ValueError");
        assert_eq!(expected_exception_type("builtins.KeyError: 'x'\n"), "KeyError");
        assert_eq!(expected_exception_type("StopIteration\n"), "StopIteration");
    }
}
