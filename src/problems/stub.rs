//! A stub as a student may see it from the grading service: its doctests' expected outputs removed, the
//! examples (`>>>` lines) kept, so the statement's examples cannot be read off as answers.

/// `stub` with every doctest's expected output removed. An expected output runs from the line after an example
/// (and its `...` continuation lines) to a blank line, the next `>>>` line or the end of the docstring; a
/// docstring's closing quotes on the last output line are kept.
pub fn without_expected_outputs(stub: &str) -> String {
    let mut out = String::with_capacity(stub.len());
    let mut in_output = false;
    for line in stub.split_inclusive('\n') {
        let text = line.trim_start();
        // an example may share its line with the docstring's opening quotes
        let prompt = text.strip_prefix(r#"""""#).or_else(|| text.strip_prefix("'''")).unwrap_or(text).trim_start();
        if prompt.starts_with(">>>") {
            in_output = true;
            out.push_str(line);
        } else if in_output && text.starts_with("...") {
            out.push_str(line);
        } else if in_output && !text.trim().is_empty() && !starts_with_quotes(text) {
            // an expected output line; keep a docstring's end if it closes on this line
            let trimmed = text.trim_end();
            if let Some(quotes) = ["\"\"\"", "'''"].into_iter().find(|q| trimmed.ends_with(q)) {
                out.push_str(&line[..line.len() - text.len()]);
                out.push_str(quotes);
                out.push('\n');
                in_output = false;
            }
        } else {
            in_output = false;
            out.push_str(line);
        }
    }
    out
}

fn starts_with_quotes(text: &str) -> bool {
    text.starts_with("\"\"\"") || text.starts_with("'''")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_outputs_go_and_examples_stay() {
        let stub = "def f(n):\n    \"\"\"Twice n.\n\n    >>> f(2)\n    4\n    >>> for i in range(2):\n    ...     print(f(i))\n    0\n    2\n\n    More text.\n    >>> f(5)\n    10\n    \"\"\"\n";
        let want = "def f(n):\n    \"\"\"Twice n.\n\n    >>> f(2)\n    >>> for i in range(2):\n    ...     print(f(i))\n\n    More text.\n    >>> f(5)\n    \"\"\"\n";
        assert_eq!(without_expected_outputs(stub), want);
    }

    #[test]
    fn a_docstring_that_closes_on_the_output_line_still_closes() {
        let stub = "def g():\n    '''>>> g()\n    'secret' '''\n    pass\n";
        let out = without_expected_outputs(stub);
        assert!(!out.contains("secret"), "{out}");
        assert_eq!(out, "def g():\n    '''>>> g()\n    '''\n    pass\n");
    }
}
