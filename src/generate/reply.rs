//! Reading a model's reply: where its code block is (so decoding can stop once it is closed), the code in it,
//! and whether the model marked the attempt final.
//!
//! Tuned on real replies of Qwen2.5-Coder-0.5B-Instruct to the study's prompts: it wraps code in Markdown fences
//! more often than in `<code>` tags, copies the docstring, writes `<SUBMIT>` inside the fence or after it, often
//! on a line of its own under a `# Submit` comment, and, left alone, goes on after the block repeating prompt
//! sections (`TODO CODE:` and a second fence) until the token limit.

use std::ops::Range;

/// The mark of a final attempt.
pub const SUBMIT: &str = "<SUBMIT>";

/// The first code block of a reply: a `<code>` element, else a Markdown fence, else code up to a bare `</code>`
/// (the fine-tuned layout's completion, whose `<code>` the model may leave out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The code, up to the closing tag or fence, or to the end of the reply while the block is open.
    pub body: Range<usize>,
    /// Where the text after the closing tag or fence begins; `None` while the block is open.
    pub after: Option<usize>,
}

pub fn first_block(reply: &str) -> Option<Block> {
    let tag = reply.find("<code>").unwrap_or(usize::MAX);
    let fence = reply.find("```").unwrap_or(usize::MAX);
    let bare_close = reply.find("</code>").unwrap_or(usize::MAX);
    let first = tag.min(fence).min(bare_close);
    if first == usize::MAX {
        None
    } else if first == tag {
        Some(closed_by(reply, tag + "<code>".len(), "</code>"))
    } else if first == fence {
        // The fence's own line holds the language tag.
        let start = reply[fence..].find('\n').map_or(reply.len(), |n| fence + n + 1);
        Some(closed_by(reply, start, "```"))
    } else {
        Some(Block { body: 0..bare_close, after: Some(bare_close + "</code>".len()) })
    }
}

fn closed_by(reply: &str, start: usize, close: &str) -> Block {
    match reply[start..].find(close) {
        Some(end) => Block { body: start..start + end, after: Some(start + end + close.len()) },
        None => Block { body: start..reply.len(), after: None },
    }
}

/// The reply has closed its code and written whatever submit mark follows it: after the block, decoding goes
/// on only through blank lines (two at most) and the beginning of a mark (`<SUBMIT>` or `SUBMIT`).
pub fn code_is_over(reply: &str) -> bool {
    let Some(after) = first_block(reply).and_then(|b| b.after) else { return false };
    let after = &reply[after..];
    let mark = after.trim_start().to_ascii_uppercase();
    if mark.is_empty() {
        return after.matches('\n').count() > 2;
    }
    // A mark is complete once anything follows `<SUBMIT>` or the bare word.
    let written = |m: &str| mark.strip_prefix(m).is_some_and(|rest| m.ends_with('>') || !rest.is_empty());
    let being_written = |m: &str| m.starts_with(mark.as_str());
    written("<SUBMIT>") || written("SUBMIT") || !(being_written("<SUBMIT>") || being_written("SUBMIT"))
}

/// A line that only marks the attempt final (`<SUBMIT>`, `SUBMIT`, `# Submit`, `[SUBMIT]`, `</SUBMIT>`, ...),
/// which would be a `NameError` or noise if it were left in the code.
fn is_submit_line(line: &str) -> bool {
    let word: String = line.chars().filter(|c| c.is_ascii_alphabetic()).collect::<String>().to_ascii_lowercase();
    let punctuation_only =
        line.chars().all(|c| c.is_ascii_alphabetic() || c.is_whitespace() || "#<>/[]*`.:!".contains(c));
    punctuation_only && matches!(word.as_str(), "submit" | "submission" | "finalsubmission" | "submitted")
}

/// A line that repeats one of the prompt's section headers (`# TODO CODE`, `FIXED CODE:`): the model is
/// echoing the prompt, and nothing from there on is the student's code.
fn is_section_header(line: &str) -> bool {
    let header = line.trim().trim_start_matches('#').trim().trim_end_matches(':').trim().to_ascii_uppercase();
    ["TODO CODE", "FIXED CODE", "PROBLEM INSTRUCTIONS", "SUBMISSIONS", "SUBMISSIONS SO FAR", "FEEDBACK", "INSTRUCTIONS"]
        .contains(&header.as_str())
}

/// The code in a model's reply and whether the attempt is marked final; `None` when the reply holds no code.
/// A reply with no block at all counts as code when it starts like Python (`def`, `import`, ...). The code
/// ends at an echoed prompt section; submit marks at its end, or on the first line after the block, are taken
/// out and make the attempt final.
pub fn extract_code(reply: &str) -> Option<(String, bool)> {
    let (body, after) = match first_block(reply) {
        Some(block) => (&reply[block.body], block.after.map_or("", |a| &reply[a..])),
        None => {
            let first = reply.trim_start();
            let code = ["def ", "import ", "from ", "class "].iter().any(|k| first.starts_with(k)).then_some(first)?;
            (code, "")
        }
    };
    let mut submit = body.contains(SUBMIT) || after.lines().find(|l| !l.trim().is_empty()).is_some_and(is_submit_line);
    let mut lines: Vec<&str> = body.lines().take_while(|l| !is_section_header(l)).collect();
    // Marks the model wrote at the end of its code; a mark inside the code is left for the grader to see.
    while let Some(last) = lines.last() {
        if last.trim().is_empty() {
            lines.pop();
        } else if is_submit_line(last) {
            submit = true;
            lines.pop();
        } else {
            break;
        }
    }
    let code = lines.join("\n").replace(SUBMIT, "").trim().to_owned();
    (!code.is_empty()).then_some((code, submit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_comes_out_of_tags_or_fences() {
        assert_eq!(extract_code("Sure!\n<code>\nx = 1\n</code> <SUBMIT>"), Some(("x = 1".into(), true)));
        assert_eq!(
            extract_code("<code>def f():\n    pass"),
            Some(("def f():\n    pass".into(), false)),
            "unclosed tag"
        );
        assert_eq!(extract_code("Here:\n```python\ny = 2\n```\nDone"), Some(("y = 2".into(), false)));
        assert_eq!(extract_code("I cannot help with that."), None);
        assert_eq!(extract_code("<code>  <SUBMIT> </code>"), None, "empty code");
    }

    /// Shapes of real replies of Qwen2.5-Coder-0.5B-Instruct to the chat prompt.
    #[test]
    fn real_reply_shapes() {
        let fenced_mark = "```python\ndef f(n):\n    return n\n\n# Submit\n<SUBMIT>\n```";
        assert_eq!(extract_code(fenced_mark), Some(("def f(n):\n    return n".into(), true)), "a comment and the mark");
        let bare_word = "```python\ndef f(n):\n    return n\nSUBMIT\n```";
        assert_eq!(extract_code(bare_word), Some(("def f(n):\n    return n".into(), true)), "no NameError from SUBMIT");
        let repeated = "```python\ndef f(n):\n    return n\n```\n\nTODO CODE:\n```python\ndef f(n):\n    return 0\n```";
        assert_eq!(extract_code(repeated), Some(("def f(n):\n    return n".into(), false)), "the first block only");
        let cut = "```python\ndef f(n):\n    for i in range(n):\n        ";
        assert_eq!(
            extract_code(cut),
            Some(("def f(n):\n    for i in range(n):".into(), false)),
            "cut at the token limit"
        );
        assert_eq!(
            extract_code("def f(n):\n    return n\n"),
            Some(("def f(n):\n    return n".into(), false)),
            "no block"
        );
        let inside = "<code>def f(n):\n    return 'submit'\n</code>";
        assert_eq!(
            extract_code(inside),
            Some(("def f(n):\n    return 'submit'".into(), false)),
            "code that says submit"
        );
        let tag_after_fence = "```\nx = 1\n```\n<SUBMIT>";
        assert_eq!(extract_code(tag_after_fence), Some(("x = 1".into(), true)));
        let word_after_fence = "```python\nx = 1\n```\n\nSUBMIT\n```python\nSUBMIT\n```";
        assert_eq!(extract_code(word_after_fence), Some(("x = 1".into(), true)), "SUBMIT after a blank line");
        let echo = "```python\ndef f(n):\n    return n\n\n# TODO CODE\ndef f(n):\n    \"*** YOUR CODE HERE ***\"\n```";
        assert_eq!(extract_code(echo), Some(("def f(n):\n    return n".into(), false)), "the echoed stub is cut");
        let prose_after = "```python\nx = 1\n```\nThis submits the code.";
        assert_eq!(extract_code(prose_after), Some(("x = 1".into(), false)), "prose that mentions submitting");
    }

    #[test]
    fn decoding_stops_after_the_block_and_its_mark() {
        assert!(!code_is_over("```python\ndef f():"), "the block is open");
        assert!(!code_is_over("<code>x = 1</code>"), "the mark may still come");
        assert!(!code_is_over("<code>x = 1</code> <SUB"), "the mark is being written");
        assert!(code_is_over("<code>x = 1</code> <SUBMIT>"));
        assert!(code_is_over("```python\nx = 1\n```\nHere is"), "prose: the code is over");
        assert!(!code_is_over("```python\nx = 1\n```\n\n"), "the mark may follow a blank line");
        assert!(!code_is_over("```python\nx = 1\n```\n\nSUB"), "SUBMIT is being written");
        assert!(code_is_over("```python\nx = 1\n```\n\nSUBMIT\n"));
        assert!(code_is_over("```python\nx = 1\n```\n\n\n\n"), "blank lines end it");
        assert!(code_is_over("```python\nx = 1\n```\n\nTODO CODE:"), "an echoed section ends it");
        assert!(code_is_over("x = 1</code><code>"), "another block is not read");
    }
}
