//! The native PEP 8 checker (`metrics::pep8`) against CPython 3.14 itself, run in the sandbox on the lines
//! pycodestyle reads: its lexer against `tokenize` (the same tokens and the same stopping error) and its checks
//! against pycodestyle 2.14.0 (the same (line, column, code) list in report order), on every real program, on
//! hand-written edge cases and on seeded mutations of real programs, plain and in the study's wrapped mode.

mod common;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use studentsim::metrics::pep8;
use studentsim::records::{StyleProblem, TokenStream, TokenizeError};

fn native(code: &str, wrapped: bool) -> TokenStream {
    let lines = pep8::checker_lines(code, wrapped);
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let (tokens, error) = pep8::tokenize(&refs);
    let error = error.map(|e| TokenizeError { type_name: e.type_name.to_owned(), message: e.message, line: e.line, column: e.column });
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

/// The lexer against `tokenize` on `programs` in both modes; fails after both ran, naming every difference.
fn same_tokens_as_cpython(programs: &[String]) {
    let refs: Vec<&str> = programs.iter().map(String::as_str).collect();
    let failures: Vec<String> = [false, true]
        .into_iter()
        .filter_map(|wrapped| {
            let cpython = common::block_on(common::grader().python_tokens(&refs, wrapped)).expect("tokenize in the sandbox");
            let ours: Vec<TokenStream> = refs.iter().map(|code| native(code, wrapped)).collect();
            differences(&refs, &cpython, &ours, &format!("tokenized differently (wrapped: {wrapped})"), first_difference)
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// How many of `programs` differ, with the first few differences as `describe` shows them; every differing
/// program is saved whole (a JSON list, ready to become an edge case) under the target's temp folder.
fn differences<T: PartialEq>(programs: &[&str], reference: &[T], ours: &[T], what: &str, describe: impl Fn(&T, &T) -> String) -> Option<String> {
    let differing: Vec<usize> = (0..programs.len()).filter(|&i| reference[i] != ours[i]).collect();
    if differing.is_empty() {
        return None;
    }
    let name = format!("pep8-differences-{}-of-{}.json", what.replace([' ', ':', '(', ')'], "_"), programs.len());
    let saved = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let whole: Vec<&str> = differing.iter().map(|&i| programs[i]).collect();
    std::fs::write(&saved, serde_json::to_string_pretty(&whole).expect("strings serialize")).expect("the target's temp folder is writable");
    let shown = differing
        .iter()
        .take(6)
        .map(|&i| format!("program {i} {:?}\n  {}", programs[i].chars().take(160).collect::<String>(), describe(&reference[i], &ours[i])))
        .collect::<Vec<_>>()
        .join("\n");
    Some(format!("{} of {} programs {what} (all saved in {}):\n{shown}", differing.len(), programs.len(), saved.display()))
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
    const PIECES: [&str; 16] = ["\"", "'", "\"\"\"", "(", ")", "[", "]", "{", "}", ":", "\\", "\n", "\t", "    ", "f\"{", "#"];
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
                let lines: Vec<String> = chars.iter().collect::<String>().split_inclusive('\n').map(str::to_owned).collect();
                if lines.is_empty() {
                    continue;
                }
                let i = rng.random_range(0..lines.len());
                let mut out: Vec<String> = lines.clone();
                if rng.random_bool(0.5) { out.remove(i); } else { out.insert(i, lines[i].clone()); }
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

/// The native checker's (line, column, code) lists against the sandboxed pycodestyle's, program by program, in
/// both modes; fails after both ran, naming every difference.
fn same_problems_as_pycodestyle(programs: &[String]) {
    let refs: Vec<&str> = programs.iter().map(String::as_str).collect();
    let show = |found: &[StyleProblem]| found.iter().map(|p| format!("{}:{}:{}", p.line, p.column, p.code)).collect::<Vec<_>>().join(" ");
    let failures: Vec<String> = [false, true]
        .into_iter()
        .filter_map(|wrapped| {
            let reference = common::block_on(common::grader().pep8_problems(&refs, wrapped)).expect("pycodestyle in the sandbox");
            let ours: Vec<Vec<StyleProblem>> = refs.iter().map(|code| pep8::check(code, wrapped)).collect();
            differences(&refs, &reference, &ours, &format!("checked differently (wrapped: {wrapped})"), |r, o| {
                format!("pycodestyle: {}\n  ours:        {}", show(r), show(o))
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

/// Issue 12's differential test at CI size: seeded mutations of real programs, every problem compared
/// (`STUDENTSIM_PEP8_MUTATIONS=100000` for the full run, in a release build).
#[test]
fn checker_equals_pycodestyle_on_mutated_real_programs() {
    let Some(mutated) = mutated_real_programs("STUDENTSIM_PEP8_MUTATIONS", 3_000, 13) else { return };
    same_problems_as_pycodestyle(&mutated);
}
