//! Inputs of the PEP 8 tests: hand-written edge cases of the lexer and the checker, and seeded mutations of
//! programs (tests/pep8_native.rs checks both against CPython and pycodestyle in the sandbox; the snapshots in
//! tests/fixtures/pycodestyle record the answers for tests/pep8_snapshots.rs).

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng as _};
use studentsim::metrics::pep8;
use studentsim::records::{TokenKind, TokenStream, TokenizeError};

/// Hand-written inputs for every branch of the lexer that real programs rarely reach: each error it stops with,
/// f-strings and t-strings, numbers, continuation lines, tabs, missing final newlines.
pub const EDGE_CASES: &[&str] = &[
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

/// A real program with one to four edits of the kinds novices make and the tokenizer cares about: characters,
/// lines, indentation, quotes and brackets deleted, duplicated or inserted.
pub fn mutate(code: &str, rng: &mut StdRng) -> String {
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

/// `count` seeded mutations of `programs`.
pub fn mutations(programs: &[String], count: usize, seed: u64) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count).map(|_| mutate(&programs[rng.random_range(0..programs.len())], &mut rng)).collect()
}

/// The native lexer's tokens of `code`, as the sandbox reports CPython's.
pub fn native(code: &str, wrapped: bool) -> TokenStream {
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

/// Whether CPython's own answer on `code` is undefined: an INDENT made inside an f-string starts before its
/// line (column -1), and `tokenize` then reads the byte before the line's text (`data[-1]` in
/// `_PyPegen_byte_offset_to_character_offset_line`), so its columns, or a `ValueError`, depend on what the heap
/// held there and change from one component build to the next. The native checker follows the case of a byte
/// below 0x80; `checker_on_indents_inside_fstrings_equals_recorded_cpython` pins it to CPython's answers then.
pub fn cpython_reads_before_a_line(code: &str, wrapped: bool) -> bool {
    native(code, wrapped).tokens.iter().any(|t| t.kind == TokenKind::Indent && t.start.1 < 0)
}
