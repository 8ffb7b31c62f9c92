//! The native PEP 8 checker (`metrics::pep8`) against CPython 3.14 itself, run in the sandbox on the lines
//! pycodestyle reads: its lexer against `tokenize` (the same tokens and the same stopping error) and its checks
//! against pycodestyle 2.14.0 (the same (line, column, code) list in report order), on every real program, on
//! hand-written edge cases and on seeded mutations of real programs, plain and in the study's wrapped mode.

mod common;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use studentsim::metrics::pep8;
use studentsim::records::{StyleProblem, TokenKind, TokenStream, TokenizeError};

fn native(code: &str, wrapped: bool) -> TokenStream {
    let lines = pep8::checker_lines(code, wrapped);
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let (tokens, error) = pep8::tokenize(&refs);
    let error = error.map(|e| TokenizeError {
        type_name: e.type_name.to_owned(),
        message: e.message,
        line: e.line,
        column: e.column,
    });
    TokenStream { tokens, error }
}

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

/// Whether CPython's own answer on `code` is undefined: an INDENT made inside an f-string starts before its
/// line (column -1), and `tokenize` then reads the byte before the line's text (`data[-1]` in
/// `_PyPegen_byte_offset_to_character_offset_line`), so its columns, or a `ValueError`, depend on what the heap
/// held there and change from one component build to the next. The native checker follows the case of a byte
/// below 0x80; `checker_on_indents_inside_fstrings_equals_recorded_cpython` pins it to CPython's answers then.
fn cpython_reads_before_a_line(code: &str, wrapped: bool) -> bool {
    native(code, wrapped).tokens.iter().any(|t| t.kind == TokenKind::Indent && t.start.1 < 0)
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
fn lexer_equals_cpython_tokenize_on_every_real_program_plain_and_wrapped() {
    let Some(programs) = common::real_programs() else { return };
    same_tokens_as_cpython(&programs);
}

/// Hand-written inputs for every branch of the lexer that real programs rarely reach: each error it stops with,
/// f-strings and t-strings, numbers, continuation lines, tabs, missing final newlines.
const EDGE_CASES: &[&str] = &[
    "",
    "   ",
    "\n\n",
    "x = 1",
    "x = 1\r\ny = 2\r\n",
    "x = 1\ry = 2\r",
    "x = \"abc\ny = 1\n",
    "x = b'abc\n",
    "x = 'a\\'\n",
    "x = 1\ny = \"\"\"abc\n\nz\n",
    "x = 'a\\\nb'\n",
    "if x:\n        a = 1\n    b = 2\n",
    "if x:\n\ta = 1\n        b = 2\n",
    "if x:\n    \ta = 1\n",
    "if x:\n  \\\n  a = 1\n",
    "x = (1,\n  2\n",
    "x = [1,\n\n",
    "x = 1 + \\ y\nz = 2\n",
    "x = 1 + \\\n",
    "x = 1 + \\",
    "\\",
    "   \\\n",
    "x = 1 + \\\n  2\n",
    "x = 012 + 0x + 1\n",
    "x = 0x\n",
    "x = 0xfg + 0x_1\n",
    "x = 1_\n",
    "x = 1__0\n",
    "x = 1e+\n",
    "x = 1e + 1E5 + 1.5e-3j + .5 + 5. + 1_000.000_1\n",
    "x = 0o9\n",
    "x = 0o17 + 0o + 0b102 + 0b\n",
    "x = 0b12\n",
    "x = 00 + 0_0 + 0j + 0e1 + 0.\n",
    "x = 1abc + 1if\n",
    "x = a\u{2019}b + \u{2019}\n",
    "x\u{e9} = 1\n",
    "x = 1\u{b}\n",
    "x = 1 $ 2 ? 3 ` 4\n",
    "x = )\ny = (]\n",
    "x = \"a\\\ny\"\nz = 1",
    "x = 1\n   \n\n",
    "def f():\n    x = 1\n  y = 2\n",
    "x = f\"a{{b}}c{x}d\"\ny = f\"{x=}\" + f\"\"\"q\n{y:>{w}}\nr\"\"\"\n",
    "x = f\"abc\n",
    "x = f\"{a\n",
    "x = f\"{a(\n  b \\ c\n",
    "x = f\"{a:\n",
    "x = f'''{a:\n}'''\n",
    "x = f\"}\"\n",
    "x = f\"{a!r:>10} {b[1:2]} {c:{d}.{e}f} {'{'} {\"x\"}\"\n",
    "x = f\"\\N{BULLET} \\{ {x}\" + rf\"\\{x}\" + fr'{x}\\n'\n",
    "x = t\"a{b}c\" + tr'{x}' + Rt\"q\"\n",
    "x = f\"{f'{1}'}\" + f\"{ {1: 2}[1] }\"\n",
    "x = bf'x' + ub'x' + Rb'x' + BR\"x\" + u'x'\n",
    "x = a <> b != c ** d // e >> f << g -> h := i ... j\nx **= 1; y //= 2; z >>= 3; w <<= 4; v @= 5\n",
    "# comment\n  # indented comment\nx = 1  # trailing\n#",
    "if x:\n    y = 1\n# c\n  # d\nz = 2\n",
    "\x0cx = 1\n\x0c\n",
    "class C:\n\tdef f(self):\n\t\treturn 1\n",
    "x = (\n    1,\n    # c\n)\n",
    "x = \"\"\"a\nb\"\"\" + f(\n  1)  # c\nprint(f\"{x!r}\", f\"{{\")\n",
    // Found by the 100,000-mutation run: an error after a backslash-continued line is reported at the end of
    // the lexer's buffer, which still holds the line before (a backslash in the indentation starts it afresh).
    "def f(a):\n  l=[]\\\n  d=nom\\bre\n  return d\n",
    "def f(a):\n  x = (a,)\n\\\n  return list(a",
];

#[test]
fn lexer_equals_cpython_tokenize_on_edge_cases() {
    let programs: Vec<String> = EDGE_CASES.iter().map(|s| (*s).to_owned()).collect();
    same_tokens_as_cpython(&programs);
}

/// A real program with one to four edits of the kinds novices make and the tokenizer cares about: characters,
/// lines, indentation, quotes and brackets deleted, duplicated or inserted.
fn mutate(code: &str, rng: &mut StdRng) -> String {
    const PIECES: [&str; 16] =
        ["\"", "'", "\"\"\"", "(", ")", "[", "]", "{", "}", ":", "\\", "\n", "\t", "    ", "f\"{", "#"];
    let mut chars: Vec<char> = code.chars().collect();
    for _ in 0..rng.random_range(1..=4) {
        let len = chars.len();
        let at = rng.random_range(0..=len);
        match rng.random_range(0..6) {
            0 if len > 0 => {
                let end = (at + rng.random_range(1..=3)).min(len);
                chars.drain(at.min(end)..end);
            }
            1 if len > 0 => {
                let start = rng.random_range(0..len);
                let piece: Vec<char> = chars[start..(start + rng.random_range(1..=12)).min(len)].to_vec();
                chars.splice(at..at, piece);
            }
            2 => {
                let piece = PIECES[rng.random_range(0..PIECES.len())];
                chars.splice(at..at, piece.chars());
            }
            3 => {
                // A whole line removed or repeated.
                let lines: Vec<String> =
                    chars.iter().collect::<String>().split_inclusive('\n').map(str::to_owned).collect();
                if lines.is_empty() {
                    continue;
                }
                let i = rng.random_range(0..lines.len());
                let mut out: Vec<String> = lines.clone();
                if rng.random_bool(0.5) {
                    out.remove(i);
                } else {
                    out.insert(i, lines[i].clone());
                }
                chars = out.concat().chars().collect();
            }
            4 => {
                // A line's indentation changed by one to four spaces, or a tab.
                let text: String = chars.iter().collect();
                let lines: Vec<&str> = text.split_inclusive('\n').collect();
                if lines.is_empty() {
                    continue;
                }
                let i = rng.random_range(0..lines.len());
                let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
                out[i] = match rng.random_range(0..3) {
                    0 => out[i].trim_start_matches(' ').to_owned(),
                    1 => format!("{}{}", " ".repeat(rng.random_range(1..=4)), out[i]),
                    _ => format!("\t{}", out[i]),
                };
                chars = out.concat().chars().collect();
            }
            _ => chars.truncate(at),
        }
    }
    chars.into_iter().collect()
}

/// `count` seeded mutations of real programs (`$count_var` overrides the count); `None` without the real data.
fn mutated_real_programs(count_var: &str, count: usize, seed: u64) -> Option<Vec<String>> {
    let programs = common::real_programs()?;
    let count: usize = std::env::var(count_var).ok().and_then(|n| n.parse().ok()).unwrap_or(count);
    let mut rng = StdRng::seed_from_u64(seed);
    Some((0..count).map(|_| mutate(&programs[rng.random_range(0..programs.len())], &mut rng)).collect())
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
fn checker_equals_pycodestyle_on_every_real_program_plain_and_wrapped() {
    let Some(programs) = common::real_programs() else { return };
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
