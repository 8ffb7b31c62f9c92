//! The native PEP 8 checker (`metrics::pep8`) against CPython 3.14 itself, run in the sandbox on the lines
//! pycodestyle reads: its lexer against `tokenize` (the same tokens and the same stopping error) and its checks
//! against pycodestyle 2.14.0 (the same (line, column, code) list in report order), on every real program, on
//! hand-written edge cases and on seeded mutations of real programs, plain and in the study's wrapped mode.

use crate::common;

use common::pep8_inputs::{EDGE_CASES, cpython_reads_before_a_line, mutations, native};
use studentsim::metrics::pep8;
use studentsim::records::{StyleProblem, TokenKind, TokenStream};

/// Where two streams first differ, for the failure message.
fn first_difference(cpython: &TokenStream, ours: &TokenStream) -> String {
    let at = cpython.tokens.iter().zip(&ours.tokens).position(|(a, b)| a != b);
    match at {
        Some(i) => format!("token {i}: CPython {:?}, ours {:?}", cpython.tokens[i], ours.tokens[i]),
        None if cpython.tokens.len() != ours.tokens.len() => format!(
            "CPython has {} tokens, ours {}; next: CPython {:?}, ours {:?}; errors {:?} / {:?}",
            cpython.tokens.len(),
            ours.tokens.len(),
            cpython.tokens.get(ours.tokens.len()),
            ours.tokens.get(cpython.tokens.len()),
            cpython.error,
            ours.error
        ),
        None => format!("errors: CPython {:?}, ours {:?}", cpython.error, ours.error),
    }
}

/// The programs whose reference answer is defined in this mode; the others are counted on stderr and saved
/// whole under the target's temp folder.
fn defined_in<'a>(programs: &[&'a str], wrapped: bool) -> Vec<&'a str> {
    let (left_out, kept): (Vec<&str>, Vec<&str>) =
        programs.iter().partition(|code| cpython_reads_before_a_line(code, wrapped));
    if !left_out.is_empty() {
        let saved = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("pep8-undefined-wrapped_{wrapped}-of-{}.json", programs.len()));
        std::fs::write(&saved, serde_json::to_string_pretty(&left_out).expect("strings serialize"))
            .expect("the target's temp folder is writable");
        eprintln!(
            "{} of {} programs left out (wrapped: {wrapped}; CPython's columns are undefined there): {}",
            left_out.len(),
            programs.len(),
            saved.display()
        );
    }
    kept
}

/// The lexer against `tokenize` on `programs` in both modes; fails after both ran, naming every difference.
fn same_tokens_as_cpython(programs: &[String]) {
    let all: Vec<&str> = programs.iter().map(String::as_str).collect();
    let failures: Vec<String> = [false, true]
        .into_iter()
        .filter_map(|wrapped| {
            let refs = defined_in(&all, wrapped);
            let cpython =
                common::block_on(common::grader().python_tokens(&refs, wrapped)).expect("tokenize in the sandbox");
            let ours: Vec<TokenStream> = refs.iter().map(|code| native(code, wrapped)).collect();
            differences(
                &refs,
                &cpython,
                &ours,
                &format!("tokenized differently (wrapped: {wrapped})"),
                first_difference,
            )
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// How many of `programs` differ, with the first few differences as `describe` shows them; every differing
/// program is saved whole (a JSON list, ready to become an edge case) under the target's temp folder.
fn differences<T: PartialEq>(
    programs: &[&str],
    reference: &[T],
    ours: &[T],
    what: &str,
    describe: impl Fn(&T, &T) -> String,
) -> Option<String> {
    let differing: Vec<usize> = (0..programs.len()).filter(|&i| reference[i] != ours[i]).collect();
    if differing.is_empty() {
        return None;
    }
    let name = format!("pep8-differences-{}-of-{}.json", what.replace([' ', ':', '(', ')'], "_"), programs.len());
    let saved = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let whole: Vec<&str> = differing.iter().map(|&i| programs[i]).collect();
    std::fs::write(&saved, serde_json::to_string_pretty(&whole).expect("strings serialize"))
        .expect("the target's temp folder is writable");
    let shown = differing
        .iter()
        .take(6)
        .map(|&i| {
            format!(
                "program {i} {:?}\n  {}",
                programs[i].chars().take(160).collect::<String>(),
                describe(&reference[i], &ours[i])
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    Some(format!(
        "{} of {} programs {what} (all saved in {}):\n{shown}",
        differing.len(),
        programs.len(),
        saved.display()
    ))
}

#[test]
fn lexer_equals_cpython_tokenize_on_real_programs_plain_and_wrapped() {
    let Some(programs) = common::parity_programs() else { return };
    same_tokens_as_cpython(&programs);
}

#[test]
fn lexer_equals_cpython_tokenize_on_edge_cases() {
    let programs: Vec<String> = EDGE_CASES.iter().map(|s| (*s).to_owned()).collect();
    same_tokens_as_cpython(&programs);
}

/// `count` seeded mutations of real programs (`$count_var` overrides the count); `None` without the real data.
fn mutated_real_programs(count_var: &str, count: usize, seed: u64) -> Option<Vec<String>> {
    let programs = common::real_programs()?;
    let count: usize = std::env::var(count_var).ok().and_then(|n| n.parse().ok()).unwrap_or(count);
    Some(mutations(&programs, count, seed))
}

#[test]
fn lexer_equals_cpython_tokenize_on_mutated_real_programs() {
    let Some(mutated) = mutated_real_programs("STUDENTSIM_LEXER_MUTATIONS", 5_000, 12) else { return };
    same_tokens_as_cpython(&mutated);
}

/// A (line, column, code) list as `line:column:code` words.
fn listed(found: &[StyleProblem]) -> String {
    found.iter().map(|p| format!("{}:{}:{}", p.line, p.column, p.code)).collect::<Vec<_>>().join(" ")
}

/// The native checker's (line, column, code) lists against the sandboxed pycodestyle's, program by program, in
/// both modes; fails after both ran, naming every difference.
fn same_problems_as_pycodestyle(programs: &[String]) {
    let all: Vec<&str> = programs.iter().map(String::as_str).collect();
    let failures: Vec<String> = [false, true]
        .into_iter()
        .filter_map(|wrapped| {
            let refs = defined_in(&all, wrapped);
            let reference =
                common::block_on(common::grader().pep8_problems(&refs, wrapped)).expect("pycodestyle in the sandbox");
            let ours: Vec<Vec<StyleProblem>> = refs.iter().map(|code| pep8::check(code, wrapped)).collect();
            differences(&refs, &reference, &ours, &format!("checked differently (wrapped: {wrapped})"), |r, o| {
                format!("pycodestyle: {}\n  ours:        {}", listed(r), listed(o))
            })
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn checker_equals_pycodestyle_on_real_programs_plain_and_wrapped() {
    let Some(programs) = common::parity_programs() else { return };
    same_problems_as_pycodestyle(&programs);
}
#[test]
fn checker_equals_pycodestyle_on_edge_cases() {
    let programs: Vec<String> = EDGE_CASES.iter().map(|s| (*s).to_owned()).collect();
    same_problems_as_pycodestyle(&programs);
}

/// Indents inside f-strings (a `{` closed by `)` leaves CPython in the f-string at bracket level 0, so NEWLINE
/// and INDENT follow): each program with pycodestyle's answers, plain and wrapped, as CPython 3.14 gave them in
/// the sandbox when the byte it reads before the line was below 0x80 (see `cpython_reads_before_a_line`).
const INDENTS_INSIDE_FSTRINGS: &[(&str, &str, &str)] = &[
    (
        "def maximum(liste):\nf\"{  res=(listee[0])\n  for[0])\n  for elem in liste:\n    if res<elem:\n      res=e",
        "2:0:E305 3:2:E128 2:3:E201 2:0:E112 3:5:E275 4:-11:E231 5:-47:E112 5:-41:E225 6:11:W292 6:-62:E112 6:-59:E225",
        "4:6:E128 3:7:E201 3:4:E112 4:9:E275 5:-32:E305 5:-15:E231 6:-55:E112 6:-49:E225 7:-74:E112 7:-71:E225",
    ),
    ("f\"{a)\n  b = 1\n", "2:-3:E111 2:-3:E113", "3:-3:E111 3:-3:E113"),
    // Two bytes for one character before the indent: the shift counts bytes.
    ("f'{é)\n  for x\n", "2:-4:E111 2:-4:E113", "3:-4:E111 3:-4:E113"),
    ("f\"{a)\n  b = (1,\n 2)\n", "3:1:E128 2:-3:E111 2:-3:E113 2:3:E231", "4:5:E122 3:-3:E111 3:-3:E113"),
    // A token over several lines gets fresh columns.
    (
        "f\"{a)\n  x = \"\"\"q\nr\"\"\" + 1\n  y\n",
        "2:-3:E111 2:-3:E113 2:0:E222 4:2:E111",
        "3:-3:E111 3:-3:E113 3:0:E222 5:6:E111",
    ),
    (
        "f\"{a)\n  if b:\n    c}d\"\n  e\n",
        "2:-3:E111 2:-3:E113 2:1:E231 3:6:E901 3:-9:E112",
        "3:-3:E111 3:-3:E113 4:10:E901 4:-13:E305 4:-13:E112",
    ),
    ("def f():\n    x = f\"{a)\n    for y in z:\n        w\n", "4:-21:E305 4:-21:E112", "5:-25:E305 5:-25:E112"),
];

#[test]
fn checker_on_indents_inside_fstrings_equals_recorded_cpython() {
    for &(code, plain, wrapped) in INDENTS_INSIDE_FSTRINGS {
        assert!(cpython_reads_before_a_line(code, false), "{code:?} has an INDENT starting before its line");
        assert_eq!(listed(&pep8::check(code, false)), plain, "plain check of {code:?}");
        assert_eq!(listed(&pep8::check(code, true)), wrapped, "wrapped check of {code:?}");
    }
}

/// The INDENT itself: its text runs from the f-string's line, it starts at column -1, and the tokens after it on
/// its line are shifted by the bytes of the lines before, less one.
#[test]
fn an_indent_inside_an_fstring_starts_before_its_line_and_shifts_the_rest() {
    let stream = native("f\"{a)\n  b = 1\n", false);
    let at = |kind: TokenKind| stream.tokens.iter().find(|t| t.kind == kind).expect("token present");
    let indent = at(TokenKind::Indent);
    assert_eq!(
        (indent.text.as_str(), indent.start, indent.end, &*indent.line),
        ("f\"{a)\n  ", (2, -1), (2, 2), "  b = 1\n")
    );
    let names: Vec<_> = stream
        .tokens
        .iter()
        .filter(|t| t.start.0 == 2 && t.kind != TokenKind::Indent)
        .map(|t| (t.text.as_str(), t.start, t.end))
        .collect();
    assert_eq!(names, [("b", (2, -3), (2, -2)), ("=", (2, -1), (2, 0)), ("1", (2, 1), (2, 2)), ("\n", (2, 2), (2, 3))]);
}

/// Issue 12's differential test at CI size: seeded mutations of real programs, every problem compared
/// (`STUDENTSIM_PEP8_MUTATIONS=100000` for the full run, in a release build).
#[test]
fn checker_equals_pycodestyle_on_mutated_real_programs() {
    let Some(mutated) = mutated_real_programs("STUDENTSIM_PEP8_MUTATIONS", 3_000, 13) else { return };
    same_problems_as_pycodestyle(&mutated);
}
