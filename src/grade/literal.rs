//! Python literals read on the host, and compared as Python's `==` compares the values they stand for, so
//! that a `compare = "value"` example passes when the submission's value equals the expected one but its repr
//! differs (a dict built in another insertion order, `{2, 1}` for `{1, 2}`, `1.0` for `1`).
//!
//! What is read: what `repr` writes for None, bools, ints, floats (`inf` and `nan` too), complex numbers, str,
//! bytes, and tuples, lists, dicts, sets and frozensets of them, nested. Anything else is not a literal, and
//! the text comparison's verdict stands.

use std::cmp::Ordering;

/// Nesting deeper than this is not read (the output of a hostile submission must not overflow the stack).
const MAX_DEPTH: usize = 100;

/// Whether `want` and `got` are both Python literals whose values are equal.
pub fn equal(want: &str, got: &str) -> bool {
    match (Canon::of(want), Canon::of(got)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// A value in a form where Python's equality is plain equality: numbers by value (`True == 1 == 1.0`), dicts
/// and sets sorted, so their order does not count.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Canon {
    None,
    Number(Number),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Canon>),
    List(Vec<Canon>),
    /// Sets and frozensets (which compare equal to each other).
    Set(Vec<Canon>),
    Dict(Vec<(Canon, Canon)>),
}

/// A number by its value: an integer when it is one (bools, integral floats and complex numbers with a zero
/// imaginary part included), else a float or a complex number. NaN is never read (it equals nothing).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Number {
    Int(i128),
    /// An integer beyond i128, by its decimal digits (sign first).
    BigInt(String),
    Float(Float),
    Complex(Float, Float),
}

/// A finite or infinite f64 that is not NaN and not integral-valued, ordered by value.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Float(f64);

impl Eq for Float {}

impl PartialOrd for Float {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Float {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl Number {
    fn real(x: f64) -> Option<Number> {
        if x.is_nan() {
            return None;
        }
        // Integral floats below 2^127 convert to i128 exactly; -0.0 becomes 0.
        Some(if x.fract() == 0.0 && x.abs() < 1.7e38 { Number::Int(x as i128) } else { Number::Float(Float(x)) })
    }

    fn complex(re: f64, im: f64) -> Option<Number> {
        if re.is_nan() || im.is_nan() {
            return None;
        }
        if im == 0.0 { Number::real(re) } else { Some(Number::Complex(Float(re + 0.0), Float(im))) }
    }

    fn as_complex(&self) -> Option<(f64, f64)> {
        match self {
            Number::Int(i) => Some((*i as f64, 0.0)),
            Number::Float(f) => Some((f.0, 0.0)),
            Number::Complex(re, im) => Some((re.0, im.0)),
            Number::BigInt(_) => None,
        }
    }

    fn negated(self) -> Option<Number> {
        match self {
            Number::Int(i) => Some(Number::Int(i.checked_neg()?)),
            Number::BigInt(digits) => Some(Number::BigInt(match digits.strip_prefix('-') {
                Some(rest) => rest.to_owned(),
                None => format!("-{digits}"),
            })),
            Number::Float(f) => Number::real(-f.0),
            Number::Complex(re, im) => Number::complex(-re.0, -im.0),
        }
    }
}

impl Canon {
    fn of(text: &str) -> Option<Canon> {
        let mut reader = Reader { text: text.as_bytes(), at: 0, depth: 0 };
        let value = reader.value()?;
        reader.skip_space();
        (reader.at == reader.text.len()).then_some(value)
    }
}

struct Reader<'a> {
    text: &'a [u8],
    at: usize,
    depth: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_space();
        if self.text[self.at..].starts_with(token.as_bytes()) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    /// A value, and the binary `+`/`-` of a real and an imaginary number (how repr writes a complex number).
    fn value(&mut self) -> Option<Canon> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        let value = self.term()?;
        let value = match value {
            Canon::Number(real) if self.peek_sign() => {
                let negative = self.eat("-") || !self.eat("+");
                let Canon::Number(imag) = self.term()? else { return None };
                let ((a, b), (c, d)) = (real.as_complex()?, imag.as_complex()?);
                let (c, d) = if negative { (-c, -d) } else { (c, d) };
                Canon::Number(Number::complex(a + c, b + d)?)
            }
            other => other,
        };
        self.depth -= 1;
        Some(value)
    }

    fn peek_sign(&mut self) -> bool {
        self.skip_space();
        matches!(self.peek(), Some(b'+' | b'-'))
    }

    fn term(&mut self) -> Option<Canon> {
        self.skip_space();
        match self.peek()? {
            b'-' | b'+' => {
                // Signs in a loop, not by recursion: a hostile `------…1` must not overflow the stack.
                let mut negative = false;
                while let Some(sign @ (b'-' | b'+')) = self.peek() {
                    negative ^= sign == b'-';
                    self.at += 1;
                    self.skip_space();
                }
                let Canon::Number(n) = self.term()? else { return None };
                Some(Canon::Number(if negative { n.negated()? } else { n }))
            }
            b'(' => {
                self.at += 1;
                let (items, trailing_comma) = self.items(b')')?;
                // `(x)` is x; `(x,)` and `()` are tuples.
                match (items.len(), trailing_comma) {
                    (1, false) => items.into_iter().next(),
                    _ => Some(Canon::Tuple(items)),
                }
            }
            b'[' => {
                self.at += 1;
                Some(Canon::List(self.items(b']')?.0))
            }
            b'{' => {
                self.at += 1;
                self.braces()
            }
            b'\'' | b'"' => Some(Canon::Str(self.string()?)),
            b'b' | b'B' if matches!(self.text.get(self.at + 1), Some(b'\'' | b'"')) => {
                self.at += 1;
                Some(Canon::Bytes(self.bytes()?))
            }
            c if c.is_ascii_digit() || c == b'.' => Some(Canon::Number(self.number()?)),
            _ => self.named(),
        }
    }

    /// None, True, False, inf, set(), frozenset(...).
    fn named(&mut self) -> Option<Canon> {
        let start = self.at;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_') {
            self.at += 1;
        }
        match &self.text[start..self.at] {
            b"None" => Some(Canon::None),
            b"True" => Some(Canon::Number(Number::Int(1))),
            b"False" => Some(Canon::Number(Number::Int(0))),
            b"inf" => Some(Canon::Number(Number::real(f64::INFINITY)?)),
            b"set" if self.eat("(") && self.eat(")") => Some(Canon::Set(Vec::new())),
            b"frozenset" if self.eat("(") => {
                if self.eat(")") {
                    return Some(Canon::Set(Vec::new()));
                }
                let inner = self.value()?;
                self.eat(")").then_some(())?;
                match inner {
                    Canon::Set(items) => Some(Canon::Set(items)),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Comma-separated values up to `close`, and whether a comma came last.
    fn items(&mut self, close: u8) -> Option<(Vec<Canon>, bool)> {
        let mut items = Vec::new();
        let mut comma = false;
        loop {
            self.skip_space();
            if self.peek()? == close {
                self.at += 1;
                return Some((items, comma));
            }
            if !items.is_empty() && !comma {
                return None;
            }
            items.push(self.value()?);
            comma = self.eat(",");
        }
    }

    /// A dict or a set, after `{`; sorted, so that order does not count.
    fn braces(&mut self) -> Option<Canon> {
        if self.eat("}") {
            return Some(Canon::Dict(Vec::new()));
        }
        let first = self.value()?;
        if self.eat(":") {
            let mut pairs = vec![(first, self.value()?)];
            while self.eat(",") {
                if self.eat("}") {
                    return Some(Canon::Dict(sorted_unique(pairs)?));
                }
                let key = self.value()?;
                self.eat(":").then_some(())?;
                pairs.push((key, self.value()?));
            }
            self.eat("}").then_some(())?;
            return Some(Canon::Dict(sorted_unique(pairs)?));
        }
        let mut items = vec![first];
        let mut closed = false;
        while self.eat(",") {
            if self.eat("}") {
                closed = true;
                break;
            }
            items.push(self.value()?);
        }
        if !closed {
            self.eat("}").then_some(())?;
        }
        items.sort();
        items.dedup();
        Some(Canon::Set(items))
    }

    fn number(&mut self) -> Option<Number> {
        let start = self.at;
        let radix = match self.text.get(self.at..self.at + 2) {
            Some([b'0', b'x' | b'X']) => 16,
            Some([b'0', b'o' | b'O']) => 8,
            Some([b'0', b'b' | b'B']) => 2,
            _ => 10,
        };
        if radix != 10 {
            self.at += 2;
            let digits_start = self.at;
            while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_') {
                self.at += 1;
            }
            let digits: String = std::str::from_utf8(&self.text[digits_start..self.at]).ok()?.replace('_', "");
            return i128::from_str_radix(&digits, radix).ok().map(Number::Int);
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit() || matches!(c, b'_' | b'.')) {
            self.at += 1;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            while self.peek().is_some_and(|c| c.is_ascii_digit() || c == b'_') {
                self.at += 1;
            }
        }
        let text = std::str::from_utf8(&self.text[start..self.at]).ok()?.replace('_', "");
        if matches!(self.peek(), Some(b'j' | b'J')) {
            self.at += 1;
            return Number::complex(0.0, text.parse().ok()?);
        }
        if text.bytes().all(|c| c.is_ascii_digit()) {
            let digits = text.trim_start_matches('0');
            let digits = if digits.is_empty() { "0" } else { digits };
            return Some(digits.parse::<i128>().map_or_else(|_| Number::BigInt(digits.to_owned()), Number::Int));
        }
        Number::real(text.parse().ok()?)
    }

    /// The body of a quoted literal, after an optional prefix: bytes up to the closing quote, escapes kept.
    fn quoted(&mut self) -> Option<&[u8]> {
        let quote = self.peek()?;
        self.at += 1;
        let start = self.at;
        loop {
            match self.peek()? {
                b'\\' => self.at += 2,
                b'\n' => return None,
                c if c == quote => break,
                _ => self.at += 1,
            }
        }
        let body = self.text.get(start..self.at)?;
        self.at += 1;
        Some(body)
    }

    fn string(&mut self) -> Option<String> {
        let body = std::str::from_utf8(self.quoted()?).ok()?;
        let mut out = String::with_capacity(body.len());
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next()? {
                'x' => out.push(char::from_u32(hex(&mut chars, 2)?)?),
                'u' => out.push(char::from_u32(hex(&mut chars, 4)?)?),
                'U' => out.push(char::from_u32(hex(&mut chars, 8)?)?),
                c => out.push(simple_escape(c)? as char),
            }
        }
        Some(out)
    }

    fn bytes(&mut self) -> Option<Vec<u8>> {
        let body = self.quoted()?.to_vec();
        let mut out = Vec::with_capacity(body.len());
        let mut bytes = body.into_iter();
        while let Some(b) = bytes.next() {
            if b != b'\\' {
                out.push(b);
                continue;
            }
            match bytes.next()? {
                b'x' => {
                    let digits = [bytes.next()?, bytes.next()?];
                    out.push(u8::from_str_radix(std::str::from_utf8(&digits).ok()?, 16).ok()?);
                }
                c => out.push(simple_escape(c as char)?),
            }
        }
        Some(out)
    }
}

/// The escapes repr writes besides `\x`, `\u` and `\U`.
fn simple_escape(c: char) -> Option<u8> {
    Some(match c {
        'n' => b'\n',
        't' => b'\t',
        'r' => b'\r',
        '0' => 0,
        '\\' => b'\\',
        '\'' => b'\'',
        '"' => b'"',
        _ => return None,
    })
}

fn hex(chars: &mut std::str::Chars, n: usize) -> Option<u32> {
    let digits: String = chars.by_ref().take(n).collect();
    (digits.len() == n).then_some(())?;
    u32::from_str_radix(&digits, 16).ok()
}

/// Dict pairs sorted by key; none when a key repeats (not a repr Python writes).
fn sorted_unique(mut pairs: Vec<(Canon, Canon)>) -> Option<Vec<(Canon, Canon)>> {
    pairs.sort();
    pairs.windows(2).all(|w| w[0].0 != w[1].0).then_some(pairs)
}

#[cfg(test)]
mod tests {
    use super::equal;

    #[test]
    fn order_does_not_count_in_dicts_and_sets() {
        assert!(equal("{'a': 1, 'b': 2}\n", "{'b': 2, 'a': 1}\n"));
        assert!(equal("{1, 2, 3}", "{3, 1, 2}"));
        assert!(equal("frozenset({1, 2})", "frozenset({2, 1})"));
        assert!(equal("{1: [1, {2, 3}], 2: ()}", "{2: (), 1: [1, {3, 2}]}"));
        assert!(!equal("{'a': 1, 'b': 2}", "{'a': 2, 'b': 1}"));
        assert!(!equal("{1, 2}", "{1, 2, 3}"));
        assert!(equal("set()", "set()") && !equal("set()", "{}"), "an empty set is not an empty dict");
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(equal("1", "1.0") && equal("1", "True") && equal("0", "False") && equal("-0.0", "0"));
        assert!(equal("[1, 2.5]", "[1.0, 2.5]"));
        assert!(equal("{1: 'x'}", "{1.0: 'x'}"), "1 and 1.0 are the same key");
        assert!(
            equal("(1+2j)", "(1.0+2j)") && equal("(1-2j)", "(1-2.0j)") && equal("2j", "(0+2j)") && equal("(3+0j)", "3")
        );
        assert!(equal("0x1f", "31") && equal("1e3", "1000") && equal("1_000", "1000") && equal("-5", "-5.0"));
        assert!(equal("123456789012345678901234567890123456789012", "123456789012345678901234567890123456789012"));
        assert!(!equal("1", "2") && !equal("0.1", "0.10000000000000002") && !equal("(1+2j)", "(1+3j)"));
        assert!(equal("inf", "inf") && equal("-inf", "-inf") && !equal("inf", "-inf"));
        assert!(!equal("nan", "nan"), "nan equals nothing");
    }

    #[test]
    fn strings_bytes_and_containers_keep_their_kinds() {
        assert!(equal("'it'", "\"it\"") && equal(r"'a\nb'", "'a\\nb'") && equal(r"'\x41\u00e9'", "'Aé'"));
        assert!(equal(r#""it's""#, r"'it\'s'"));
        assert!(equal(r"b'\x00a'", r"b'\x00a'") && !equal("b'a'", "'a'"), "bytes are not str");
        assert!(!equal("[1, 2]", "(1, 2)"), "a list is not a tuple");
        assert!(equal("(1,)", "(1, )") && !equal("(1)", "(1,)"), "(1) is 1");
        assert!(equal("None", "None") && !equal("None", "0") && !equal("'1'", "1"));
    }

    #[test]
    fn anything_else_is_not_a_literal() {
        for text in
            ["<object at 0x7f>", "[1, 2", "{1: 2, 1: 3}", "f(1)", "1 2", "'unterminated", "Point(x=1)", "", "{1: }"]
        {
            assert!(!equal(text, text), "{text:?} read as a literal");
        }
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(!equal(&deep, &deep), "too deep to read");
    }
}
