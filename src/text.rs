//! Untrusted text made safe to keep and to show, at the bottom of the module map: every text that comes from a
//! submission, a model or a tutor is bounded before it goes into a record ([`cut`]) and escaped before it reaches
//! a terminal ([`for_terminal`]).

use std::fmt::Write;

/// `text` in at most `limit` bytes. A longer one is cut at a character boundary and ends with a marker that says
/// how long it was, so a reader always sees that something is missing. A cut text is a new, small allocation:
/// the long one is freed, so what a record keeps costs the host no more than its limit.
pub fn cut(text: String, limit: usize) -> String {
    if text.len() <= limit { text } else { cut_str(&text, limit) }
}

/// [`cut`] for a borrowed text: copies at most `limit` bytes of it, however long it is.
pub fn cut_str(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let marker = format!(" …[cut: {} bytes in all]", text.len());
    let mut end = limit.saturating_sub(marker.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut kept = String::with_capacity(end + marker.len());
    kept.push_str(&text[..end]);
    kept.push_str(&marker);
    kept
}

/// `text` on one line with no control characters: line breaks, escapes, tabs and other C0/C1 controls (and the
/// bidirectional overrides that reorder what a terminal shows) are written as `\n`, `\u{1b}` and so on, so
/// untrusted text cannot start a new line, move the cursor or redraw what was printed before it. Backslashes are
/// kept as they are (error messages quote Rust-escaped text), so a literal `\n` and an escaped line break read
/// alike: the point is that neither breaks the line.
pub fn for_terminal(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => shown.push_str("\\n"),
            '\r' => shown.push_str("\\r"),
            '\t' => shown.push_str("\\t"),
            c if c.is_control() || reorders_or_breaks_a_line(c) => {
                write!(shown, "\\u{{{:x}}}", c as u32).expect("writing to a String")
            }
            c => shown.push(c),
        }
    }
    shown
}

/// The bidirectional marks and overrides, and the Unicode line and paragraph separators (which split a line for
/// anything that reads text as Python's `splitlines()` does).
fn reorders_or_breaks_a_line(c: char) -> bool {
    matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_text_fits_its_limit_and_says_so() {
        let long = "é".repeat(1000); // 2,000 bytes
        let kept = cut(long, 100);
        assert!(kept.len() <= 100, "{} bytes", kept.len());
        assert!(kept.ends_with(" …[cut: 2000 bytes in all]"), "{kept}");
        assert!(kept.starts_with("éé"));
        assert!(kept.capacity() <= 100, "a cut text keeps {} bytes allocated, not its 100", kept.capacity());
        assert_eq!(cut("short".into(), 100), "short", "a text within the limit is kept whole");
    }

    #[test]
    fn terminal_text_has_no_line_breaks_or_escapes() {
        let hostile = "E\n other.py: no_error 4/4\u{1b}[2K\r\u{202e}x\\";
        let shown = for_terminal(hostile);
        assert_eq!(shown, "E\\n other.py: no_error 4/4\\u{1b}[2K\\r\\u{202e}x\\");
        assert!(!shown.chars().any(|c| c.is_control()), "{shown:?}");
    }

    #[test]
    fn unicode_line_separators_do_not_break_a_line() {
        // Terminals keep them on one line, but readers of the output that split as Python's splitlines() does
        // would see a second line; U+061C is the Arabic letter mark, a bidirectional control.
        let shown = for_terminal("E\u{2028}fake.py: no_error 4/4\u{2029}\u{61c}\u{85}");
        assert_eq!(shown, "E\\u{2028}fake.py: no_error 4/4\\u{2029}\\u{61c}\\u{85}");
    }
}
