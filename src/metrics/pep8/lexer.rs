//! CPython 3.14's `tokenize.generate_tokens` over the lines pycodestyle reads: a port of the C lexer
//! (`Parser/lexer/lexer.c`) in the lenient mode `tokenize` runs it in (`extra_tokens`), token for token.
//!
//! What that mode means, and what pycodestyle's counts depend on:
//! * a line without a final newline gets a fake one: its NEWLINE or NL token has empty text but still one
//!   column, and the token's `line` leaves it out (the study's wrapped mode hands over every line that way);
//! * brackets are not matched, number endings and identifiers are not verified (`012`, `1abc`, `a’b` are tokens);
//! * what is still an error stops the stream: unterminated strings and f-strings, bad indentation, a character
//!   after a line continuation, EOF inside brackets, malformed number bodies (`0x`, `1_`, `0o9`), non-printable
//!   characters. [`LexError`] says where pycodestyle reports it (E901).
//!
//! Columns count characters, as Python's do. f-strings and t-strings come as START / MIDDLE / END with their
//! expressions tokenized in between, exactly as CPython splits them (`{{` gives a MIDDLE that ends before the
//! second brace).

use std::sync::Arc;

use super::{Kind, Token};

/// Where and why `tokenize` stopped, as pycodestyle reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    /// `TokenError` (what `tokenize` makes of a plain `SyntaxError`), `IndentationError` or `TabError`.
    pub type_name: &'static str,
    pub message: String,
    pub line: i32,
    pub column: i32,
    /// How many lines the lexer had read when it stopped (pycodestyle's `line_number` then).
    pub lines_read: usize,
}

/// Every token of `lines` (each with its own `\n`, or none), up to the error that stopped the stream.
pub fn tokenize(lines: &[&str]) -> (Vec<Token>, Option<LexError>) {
    let mut lexer = Lexer::new(lines);
    // About one token per four characters in novice code.
    let mut tokens = Vec::with_capacity(lexer.src.len() / 4 + 8);
    loop {
        match lexer.next_token() {
            Ok(token) => {
                let end = token.kind == Kind::EndMarker;
                tokens.push(token);
                if end {
                    return (tokens, None);
                }
            }
            Err(mut error) => {
                error.lines_read = lexer.lines_read();
                return (tokens, Some(error));
            }
        }
    }
}

const TAB_SIZE: usize = 8;
const MAX_INDENT: usize = 100;
const MAX_LEVEL: usize = 200;
const MAX_FSTRING_LEVEL: usize = 150;

/// One f-string or t-string being read (CPython's `tokenizer_mode`).
struct FString {
    /// Reading the literal part (true) or an expression (false).
    literal: bool,
    quote: char,
    quote_size: usize,
    raw: bool,
    t_string: bool,
    /// Where its START token began, for the unterminated error.
    start: usize,
    curly_depth: i32,
    expr_start_depth: i32,
    in_format_spec: bool,
    in_debug: bool,
}

impl FString {
    fn in_expr(&self) -> bool {
        self.expr_start_depth >= 0
    }

    fn prefix(&self) -> char {
        if self.t_string { 't' } else { 'f' }
    }
}

struct Lexer<'a> {
    raw: &'a [&'a str],
    /// Every line's characters, each followed by a newline (a fake one when the line has none).
    src: Vec<char>,
    /// Index in `src` where each line starts, and `src.len()` last.
    starts: Vec<usize>,
    /// Each line as the tokens on it share it, and the empty line of the tokens after the last.
    shared: Vec<Arc<str>>,
    empty: Arc<str>,
    /// The first row in the C lexer's buffer: it starts afresh with each line read between tokens outside any
    /// f-string, and keeps the lines before when a line is read after a backslash, inside a string, or inside an
    /// f-string.
    buffer_row: usize,
    pos: usize,
    at_line_start: bool,
    indents: Vec<usize>,
    alt_indents: Vec<usize>,
    pending: i32,
    level: usize,
    blank_line: bool,
    comment_newline: bool,
    fstrings: Vec<FString>,
    /// The line of an INDENT made inside an f-string, and how far `tokenize` shifts the columns of the tokens
    /// after it on that line (see [`Lexer::indent`]).
    indent_skew: Option<(u32, i32)>,
}

type Step = Result<Token, LexError>;

impl<'a> Lexer<'a> {
    fn new(raw: &'a [&'a str]) -> Self {
        let mut src = Vec::with_capacity(raw.iter().map(|line| line.len() + 1).sum());
        let mut starts = Vec::with_capacity(raw.len() + 1);
        for line in raw {
            starts.push(src.len());
            src.extend(line.chars());
            if !line.ends_with('\n') {
                src.push('\n');
            }
        }
        starts.push(src.len());
        Lexer {
            raw,
            src,
            starts,
            shared: raw.iter().map(|&line| Arc::from(line)).collect(),
            empty: Arc::from(""),
            buffer_row: 0,
            pos: 0,
            at_line_start: true,
            indents: vec![0],
            alt_indents: vec![0],
            pending: 0,
            level: 0,
            blank_line: false,
            comment_newline: false,
            fstrings: Vec::new(),
            indent_skew: None,
        }
    }

    fn peek(&self) -> Option<char> {
        self.src.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<char> {
        self.src.get(self.pos + ahead).copied()
    }

    /// 0-based row of a position (the row after the last for the end of input).
    fn row(&self, pos: usize) -> usize {
        self.starts.partition_point(|&s| s <= pos).saturating_sub(1).min(self.raw.len())
    }

    fn at(&self, pos: usize) -> (u32, i32) {
        let row = self.row(pos);
        ((row + 1) as u32, (pos - self.starts[row]) as i32)
    }

    /// The physical lines `first..=last` as the C lexer's buffer holds them: a fake newline between lines, none
    /// after the last.
    fn lines_text(&self, first: usize, last: usize) -> Arc<str> {
        let last = last.min(self.raw.len() - 1);
        if first == last {
            return self.shared[first].clone();
        }
        let mut text = String::new();
        for (row, line) in self.raw.iter().enumerate().take(last + 1).skip(first) {
            text.push_str(line);
            if row < last && !line.ends_with('\n') {
                text.push('\n');
            }
        }
        text.into()
    }

    fn token(&self, kind: Kind, start: usize, end: usize) -> Token {
        let mut text = String::with_capacity(end - start);
        text.extend(&self.src[start..end]);
        self.token_with(kind, text, start, end)
    }

    fn token_with(&self, kind: Kind, text: String, start: usize, end: usize) -> Token {
        self.skewed(self.unskewed_token(kind, text, start, end))
    }

    fn unskewed_token(&self, kind: Kind, text: String, start: usize, end: usize) -> Token {
        let last = self.row(end.saturating_sub(1).max(start));
        Token {
            kind,
            text,
            start: self.at(start),
            end: self.end_at(start, end),
            line: self.lines_text(self.row(start), last),
        }
    }

    /// A token on the line of an INDENT made inside an f-string, with `tokenize`'s shifted columns; a token
    /// that spans lines gets fresh columns (`tokenize` recomputes them when the line changes).
    fn skewed(&self, mut token: Token) -> Token {
        if let Some((line, skew)) = self.indent_skew
            && token.start.0 == line
            && token.end.0 == line
        {
            token.start.1 -= skew;
            token.end.1 -= skew;
        }
        token
    }

    /// A token's end: just after a newline it is still on the newline's line (the next one is not read yet).
    fn end_at(&self, start: usize, end: usize) -> (u32, i32) {
        if end > start && self.src[end - 1] == '\n' {
            let (line, column) = self.at(end - 1);
            return (line, column + 1);
        }
        self.at(end)
    }

    /// A MIDDLE that ends where an expression begins or ends: the brace there was read (and given back), so its
    /// line belongs to the token's `line` even when the MIDDLE ended on the line before.
    fn middle_before_brace(&self, kind: Kind, start: usize) -> Token {
        let text = self.src[start..self.pos].iter().collect();
        let line = self.lines_text(self.row(start), self.row(self.pos));
        self.skewed(Token { end: self.at(self.pos), line, ..self.unskewed_token(kind, text, start, self.pos) })
    }

    /// A newline character's token: empty text when the newline is a fake one.
    fn newline_token(&self, kind: Kind, at: usize) -> Token {
        let row = self.row(at);
        let text = if self.raw[row].ends_with('\n') { "\n".to_owned() } else { String::new() };
        self.token_with(kind, text, at, at + 1)
    }

    /// An INDENT ending at `end`. The C lexer starts it at its buffer's start, which inside an f-string is the
    /// line the f-string began on: its text then holds every line since, its start column is -1 (it starts
    /// before the line), and `tokenize`'s byte-to-column bookkeeping carries the bytes of those lines, less one,
    /// into the columns of every later token on the line, which come out that much smaller (often negative).
    fn indent(&mut self, end: usize) -> Token {
        let row = self.row(end);
        if self.buffer_row >= row {
            return self.token(Kind::Indent, self.starts[row], end);
        }
        let first = self.starts[self.buffer_row];
        let before: usize = self.src[first..self.starts[row]].iter().map(|c| c.len_utf8()).sum();
        let line = (row + 1) as u32;
        self.indent_skew = Some((line, before as i32 - 1));
        Token {
            kind: Kind::Indent,
            text: self.src[first..end].iter().collect(),
            start: (line, -1),
            end: (line, (end - self.starts[row]) as i32),
            line: self.shared[row].clone(),
        }
    }

    /// A token after the last line: ENDMARKER, or a DEDENT at the end of input.
    fn trailing(&self, kind: Kind) -> Token {
        Token {
            kind,
            text: String::new(),
            start: (self.raw.len() as u32 + 1, 0),
            end: (self.raw.len() as u32 + 1, 0),
            line: self.empty.clone(),
        }
    }

    /// A `SyntaxError` the lexer raises at the current position (`tokenize` turns it into a `TokenError`).
    fn syntax_error(&self, message: impl Into<String>) -> LexError {
        let (line, column) = self.end_at(0, self.pos.min(self.src.len()));
        LexError { type_name: "TokenError", message: message.into(), line: line as i32, column, lines_read: 0 }
    }

    /// A `SyntaxError` reported at the character after `start` on its line (unterminated strings).
    fn error_after(&self, start: usize, message: String) -> LexError {
        let (line, column) = self.at(start);
        LexError { type_name: "TokenError", message, line: line as i32, column: column + 1, lines_read: 0 }
    }

    /// A line read between tokens: the buffer starts with it, unless an f-string keeps the lines before.
    fn start_buffer(&mut self) {
        if self.fstrings.is_empty() {
            self.buffer_row = self.row(self.pos);
        }
    }

    /// An error of the `tokenize` module's own kind: reported at the end of the lexer's buffer (`buffer_row`).
    fn line_error(&self, type_name: &'static str, message: &str) -> LexError {
        let row = self.row(self.pos).min(self.raw.len().saturating_sub(1));
        let first = self.buffer_row.min(row);
        let width = self.starts[row + 1] - self.starts[first];
        LexError { type_name, message: message.to_owned(), line: row as i32 + 1, column: width as i32, lines_read: 0 }
    }

    /// Lines read so far: up to the current position, not counting the line after a newline just consumed.
    fn lines_read(&self) -> usize {
        let at = self.pos.min(self.src.len());
        if at == 0 {
            return 0;
        }
        if self.src[at - 1] == '\n' { self.row(at - 1) + 1 } else { self.row(at) + 1 }
    }

    fn next_token(&mut self) -> Step {
        match self.fstrings.last() {
            Some(f) if f.literal => self.fstring_literal(),
            _ => self.normal(),
        }
    }

    fn normal(&mut self) -> Step {
        self.blank_line = false;
        loop {
            if self.at_line_start {
                self.at_line_start = false;
                self.start_buffer();
                self.indentation()?;
            }
            let line_start = self.pos;
            if self.pending < 0 {
                self.pending += 1;
                if self.pos >= self.src.len() {
                    return Ok(self.trailing(Kind::Dedent));
                }
                return Ok(self.token(Kind::Dedent, self.pos, self.pos));
            }
            if self.pending > 0 {
                self.pending -= 1;
                return Ok(self.indent(line_start));
            }
            match self.after_spaces()? {
                Some(token) => return Ok(token),
                None => continue, // a line that only continued the previous one: read the next
            }
        }
    }

    /// The indentation of a new line: pending INDENT / DEDENT tokens, or an error.
    fn indentation(&mut self) -> Result<(), LexError> {
        let (mut col, mut alt_col, mut cont_col) = (0usize, 0usize, 0usize);
        loop {
            match self.peek() {
                Some(' ') => {
                    col += 1;
                    alt_col += 1;
                }
                Some('\t') => {
                    col = (col / TAB_SIZE + 1) * TAB_SIZE;
                    alt_col += 1;
                }
                Some('\x0c') => {
                    col = 0;
                    alt_col = 0;
                }
                Some('\\') => {
                    // Indentation cannot be split by backslashes: the first one fixes the level.
                    cont_col = if cont_col != 0 { cont_col } else { col };
                    self.pos += 1;
                    self.continuation_line(true)?;
                    // Between tokens: the next line starts the buffer afresh.
                    self.start_buffer();
                    continue;
                }
                _ => break,
            }
            self.pos += 1;
        }
        if matches!(self.peek(), Some('#' | '\n' | '\r')) {
            self.blank_line = true; // whitespace and comments only: indentation does not count
            return Ok(());
        }
        if self.level != 0 {
            return Ok(());
        }
        if cont_col != 0 {
            col = cont_col;
            alt_col = cont_col;
        }
        let top = self.indents.len() - 1;
        if col == self.indents[top] {
            if alt_col != self.alt_indents[top] {
                return Err(self.tab_error());
            }
        } else if col > self.indents[top] {
            if top + 1 >= MAX_INDENT {
                return Err(self.line_error("IndentationError", "too many levels of indentation"));
            }
            if alt_col <= self.alt_indents[top] {
                return Err(self.tab_error());
            }
            self.pending += 1;
            self.indents.push(col);
            self.alt_indents.push(alt_col);
        } else {
            while self.indents.len() > 1 && col < self.indents[self.indents.len() - 1] {
                self.pending -= 1;
                self.indents.pop();
                self.alt_indents.pop();
            }
            let top = self.indents.len() - 1;
            if col != self.indents[top] {
                return Err(self.line_error("IndentationError", "unindent does not match any outer indentation level"));
            }
            if alt_col != self.alt_indents[top] {
                return Err(self.tab_error());
            }
        }
        Ok(())
    }

    fn tab_error(&self) -> LexError {
        self.line_error("TabError", "inconsistent use of tabs and spaces in indentation")
    }

    /// After a backslash: the line must end there, and another must follow. At the end of input CPython reports
    /// the end of the backslash's line, or column 0 when the backslash stood in the indentation.
    fn continuation_line(&mut self, in_indentation: bool) -> Result<(), LexError> {
        if self.peek() == Some('\r') {
            self.pos += 1;
        }
        if self.peek() != Some('\n') {
            self.pos += 1;
            return Err(self.line_error("TokenError", "unexpected character after line continuation character"));
        }
        let row = self.row(self.pos);
        self.pos += 1;
        if self.pos >= self.src.len() {
            // Reported at the end of the backslash's line, counted in UTF-8 bytes as the C lexer counts them.
            let bytes =
                if in_indentation { 0 } else { self.raw[row].len() + usize::from(!self.raw[row].ends_with('\n')) };
            return Err(LexError {
                type_name: "TokenError",
                message: "unexpected EOF in multi-line statement".to_owned(),
                line: row as i32 + 1,
                column: bytes as i32,
                lines_read: 0,
            });
        }
        Ok(())
    }

    /// Skip blanks, then read one token; `None` after a line continuation (the caller reads on).
    fn after_spaces(&mut self) -> Result<Option<Token>, LexError> {
        while matches!(self.peek(), Some(' ' | '\t' | '\x0c')) {
            self.pos += 1;
        }
        let start = self.pos;
        let Some(mut c) = self.peek() else {
            if self.level > 0 {
                // Reported at the end of the lexer's buffer: empty at EOF, unless an f-string kept its lines
                // (then the UTF-8 bytes from the line it started on).
                let column = self.fstrings.first().map_or(0, |f| {
                    let first = self.starts[self.row(f.start)];
                    self.src[first..].iter().map(|c| c.len_utf8()).sum::<usize>()
                });
                return Err(LexError {
                    type_name: "TokenError",
                    message: "unexpected EOF in multi-line statement".to_owned(),
                    line: self.raw.len() as i32,
                    column: column as i32,
                    lines_read: 0,
                });
            }
            return Ok(Some(self.trailing(Kind::EndMarker)));
        };
        self.pos += 1;
        if c == '#' {
            while !matches!(self.peek(), None | Some('\n' | '\r')) {
                self.pos += 1;
            }
            self.comment_newline = self.blank_line;
            return Ok(Some(self.token(Kind::Comment, start, self.pos)));
        }
        if c.is_ascii_alphabetic() || c == '_' || !c.is_ascii() {
            return self.name_or_prefixed_string(start, c).map(Some);
        }
        if c == '\r' {
            match self.peek() {
                Some(next) => {
                    c = next;
                    self.pos += 1;
                }
                None => return Ok(Some(self.trailing(Kind::EndMarker))),
            }
        }
        if c == '\n' {
            self.at_line_start = true;
            let at = self.pos - 1;
            if self.blank_line || self.level > 0 {
                self.comment_newline = false;
                return Ok(Some(self.newline_token(Kind::Nl, at)));
            }
            if self.comment_newline {
                self.comment_newline = false;
                return Ok(Some(self.newline_token(Kind::Nl, at)));
            }
            return Ok(Some(self.newline_token(Kind::Newline, at)));
        }
        if c == '.' {
            if self.peek().is_some_and(|d| d.is_ascii_digit()) {
                return self.number_fraction(start).map(Some);
            }
            if self.peek() == Some('.') && self.peek_at(1) == Some('.') {
                self.pos += 2;
            }
            return Ok(Some(self.token(Kind::Op, start, self.pos)));
        }
        if c.is_ascii_digit() {
            return self.number(start, c).map(Some);
        }
        if c == '"' || c == '\'' {
            return self.string(start, c).map(Some);
        }
        if c == '\\' {
            self.continuation_line(false)?;
            return Ok(None);
        }
        self.operator(start, c).map(Some)
    }

    fn name_or_prefixed_string(&mut self, start: usize, first: char) -> Step {
        let (mut b, mut r, mut u, mut f, mut t) = (false, false, false, false, false);
        let mut c = first;
        loop {
            match c {
                'b' | 'B' if !b => b = true,
                'u' | 'U' if !u => u = true,
                'r' | 'R' if !r => r = true,
                'f' | 'F' if !f => f = true,
                't' | 'T' if !t => t = true,
                _ => break,
            }
            match self.peek() {
                Some(q @ ('"' | '\'')) => {
                    self.pos += 1;
                    let incompatible = [
                        (u, b, "u", "b"),
                        (u, r, "u", "r"),
                        (u, f, "u", "f"),
                        (u, t, "u", "t"),
                        (b, f, "b", "f"),
                        (b, t, "b", "t"),
                        (f, t, "f", "t"),
                    ];
                    if let Some((_, _, one, other)) = incompatible.into_iter().find(|&(x, y, _, _)| x && y) {
                        return Err(self.error_after(start, format!("'{one}' and '{other}' prefixes are incompatible")));
                    }
                    return if f || t { self.fstring_start(start, q, r, t) } else { self.string(start, q) };
                }
                Some(next) => {
                    c = next;
                    self.pos += 1;
                }
                None => break,
            }
        }
        // `c` was read and is not a prefix letter: the name goes on while it has name characters.
        if !(c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii()) {
            self.pos -= 1;
        }
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii()) {
            self.pos += 1;
        }
        Ok(self.token(Kind::Name, start, self.pos))
    }

    fn digits(&mut self) -> Result<(), LexError> {
        loop {
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1;
            }
            if self.peek() != Some('_') {
                return Ok(());
            }
            self.pos += 1;
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.syntax_error("invalid decimal literal"));
            }
        }
    }

    fn number(&mut self, start: usize, first: char) -> Step {
        if first == '0' {
            match self.peek() {
                Some('x' | 'X') => return self.radix_number(start, 16, "hexadecimal"),
                Some('o' | 'O') => return self.radix_number(start, 8, "octal"),
                Some('b' | 'B') => return self.radix_number(start, 2, "binary"),
                _ => {}
            }
            // Old-style octal is not an error in tokenize's mode: zeros, then any decimal tail.
            loop {
                if self.peek() == Some('_') {
                    self.pos += 1;
                    if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        return Err(self.syntax_error("invalid decimal literal"));
                    }
                }
                if self.peek() != Some('0') {
                    break;
                }
                self.pos += 1;
            }
            if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.digits()?;
            }
        } else {
            self.digits()?;
        }
        match self.peek() {
            Some('.') => {
                self.pos += 1;
                self.number_fraction(start)
            }
            _ => self.number_exponent(start),
        }
    }

    /// After the `.` of a number (or a number that starts with `.`).
    fn number_fraction(&mut self, start: usize) -> Step {
        if self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.digits()?;
        }
        self.number_exponent(start)
    }

    fn number_exponent(&mut self, start: usize) -> Step {
        if matches!(self.peek(), Some('e' | 'E')) {
            let e = self.pos;
            self.pos += 1;
            if matches!(self.peek(), Some('+' | '-')) {
                self.pos += 1;
                if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    return Err(self.syntax_error("invalid decimal literal"));
                }
            } else if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.pos = e; // `1e` is the number 1 and the name `e`
                return Ok(self.token(Kind::Number, start, self.pos));
            }
            self.digits()?;
        }
        if matches!(self.peek(), Some('j' | 'J')) {
            self.pos += 1;
        }
        Ok(self.token(Kind::Number, start, self.pos))
    }

    fn radix_number(&mut self, start: usize, radix: u32, kind: &str) -> Step {
        self.pos += 1; // the x, o or b
        loop {
            if self.peek() == Some('_') {
                self.pos += 1;
            }
            let c = self.peek();
            if !c.is_some_and(|c| c.is_digit(radix)) {
                if radix != 16 && c.is_some_and(|c| c.is_ascii_digit()) {
                    self.pos += 1;
                    return Err(self.syntax_error(format!("invalid digit '{}' in {kind} literal", c.unwrap_or('0'))));
                }
                return Err(self.syntax_error(format!("invalid {kind} literal")));
            }
            while self.peek().is_some_and(|c| c.is_digit(radix)) {
                self.pos += 1;
            }
            if self.peek() != Some('_') {
                break;
            }
        }
        if radix != 16 && self.peek().is_some_and(|c| c.is_ascii_digit()) {
            let c = self.peek().unwrap_or('0');
            self.pos += 1;
            return Err(self.syntax_error(format!("invalid digit '{c}' in {kind} literal")));
        }
        Ok(self.token(Kind::Number, start, self.pos))
    }

    /// A string literal whose opening quote was just read.
    fn string(&mut self, start: usize, quote: char) -> Step {
        let mut quote_size = 1;
        let mut end_quote_size = 0;
        if self.peek() == Some(quote) {
            if self.peek_at(1) == Some(quote) {
                self.pos += 2;
                quote_size = 3;
            } else {
                self.pos += 1;
                end_quote_size = 1; // the empty string
            }
        }
        let mut escaped_quote = false;
        while end_quote_size != quote_size {
            let c = self.peek();
            self.pos += 1;
            if c.is_none() || (quote_size == 1 && c == Some('\n')) {
                {
                    let detected = self.row(self.pos.min(self.src.len()) - 1) + 1;
                    if let Some(f) = self.fstrings.last()
                        && f.quote == quote
                        && f.quote_size == quote_size
                    {
                        return Err(self.error_after(start, format!("{}-string: expecting '}}'", f.prefix())));
                    }
                    let message = if quote_size == 3 {
                        "EOF in multi-line string".to_owned()
                    } else if escaped_quote {
                        format!(
                            "unterminated string literal (detected at line {detected}); perhaps you escaped the end quote?"
                        )
                    } else {
                        format!("unterminated string literal (detected at line {detected})")
                    };
                    return Err(self.error_after(start, message));
                }
            }
            match c.expect("checked above") {
                c if c == quote => end_quote_size += 1,
                c => {
                    end_quote_size = 0;
                    if c == '\\' {
                        let escaped = self.peek();
                        if escaped.is_some() {
                            self.pos += 1;
                        }
                        escaped_quote |= escaped == Some(quote);
                    }
                }
            }
        }
        Ok(self.token(Kind::String, start, self.pos))
    }

    fn fstring_start(&mut self, start: usize, quote: char, raw: bool, t_string: bool) -> Step {
        let mut quote_size = 1;
        if self.peek() == Some(quote) && self.peek_at(1) == Some(quote) {
            self.pos += 2;
            quote_size = 3;
        }
        if self.fstrings.len() + 1 >= MAX_FSTRING_LEVEL {
            return Err(self.syntax_error("too many nested f-strings or t-strings"));
        }
        self.fstrings.push(FString {
            literal: true,
            quote,
            quote_size,
            raw,
            t_string,
            start,
            curly_depth: 0,
            expr_start_depth: -1,
            in_format_spec: false,
            in_debug: false,
        });
        let kind = if t_string { Kind::TStringStart } else { Kind::FStringStart };
        Ok(self.token(kind, start, self.pos))
    }

    fn operator(&mut self, start: usize, c: char) -> Step {
        if matches!(c, ':' | '}' | '!' | '{')
            && let Some(f) = self.fstrings.last_mut()
            && f.in_expr()
        {
            let cursor = f.curly_depth - i32::from(c != '{');
            if c == ':' && cursor == f.expr_start_depth {
                f.literal = true;
                f.in_format_spec = true;
                return Ok(self.token(Kind::Op, start, self.pos));
            }
        }
        if let Some(next) = self.peek()
            && is_two_char_operator(c, next)
        {
            self.pos += 1;
            if let Some(third) = self.peek()
                && is_three_char_operator(c, next, third)
            {
                self.pos += 1;
            }
            return Ok(self.token(Kind::Op, start, self.pos));
        }
        match c {
            '(' | '[' | '{' => {
                if self.level >= MAX_LEVEL {
                    return Err(self.syntax_error("too many nested parentheses"));
                }
                self.level += 1;
                if let Some(f) = self.fstrings.last_mut() {
                    f.curly_depth += 1;
                }
            }
            ')' | ']' | '}' => {
                if c == '}'
                    && let Some(f) = self.fstrings.last()
                    && f.curly_depth == 0
                {
                    return Err(self.syntax_error(format!("{}-string: single '}}' is not allowed", f.prefix())));
                }
                self.level = self.level.saturating_sub(1);
                if let Some(f) = self.fstrings.last_mut() {
                    f.curly_depth -= 1;
                    if f.curly_depth < 0 {
                        let prefix = f.prefix();
                        return Err(self.syntax_error(format!("{prefix}-string: unmatched '{c}'")));
                    }
                    if c == '}' && f.curly_depth == f.expr_start_depth {
                        f.expr_start_depth -= 1;
                        f.literal = true;
                        f.in_format_spec = false;
                        f.in_debug = false;
                    }
                }
            }
            _ => {}
        }
        if !is_printable(c) {
            return Err(self.syntax_error(format!("invalid non-printable character U+{:04X}", c as u32)));
        }
        if c == '='
            && let Some(f) = self.fstrings.last_mut()
            && f.in_expr()
        {
            f.in_debug = true;
        }
        Ok(self.token(Kind::Op, start, self.pos))
    }

    /// The literal part of the innermost f-string: a MIDDLE, its END, or a hand-over to an expression.
    fn fstring_literal(&mut self) -> Step {
        let start = self.pos;
        let f = self.fstrings.last_mut().expect("in an f-string");
        if self.src.get(self.pos) == Some(&'{') && self.src.get(self.pos + 1) != Some(&'{') {
            f.expr_start_depth += 1;
            f.literal = false;
            return self.normal();
        }
        let (quote, quote_size) = (f.quote, f.quote_size);
        if (0..quote_size).all(|i| self.src.get(self.pos + i) == Some(&quote)) {
            self.pos += quote_size;
            let f = self.fstrings.pop().expect("in an f-string");
            let kind = if f.t_string { Kind::TStringEnd } else { Kind::FStringEnd };
            return Ok(self.token(kind, start, self.pos));
        }
        let middle = if f.t_string { Kind::TStringMiddle } else { Kind::FStringMiddle };
        let mut end_quote_size = 0;
        let mut unicode_escape = false;
        while end_quote_size != quote_size {
            let c = self.peek();
            self.pos += 1;
            let f = self.fstrings.last_mut().expect("in an f-string");
            let in_format_spec = f.in_format_spec && f.in_expr();
            if c.is_none() || (quote_size == 1 && c == Some('\n')) {
                if in_format_spec && c == Some('\n') {
                    if quote_size == 1 {
                        let p = f.prefix();
                        return Err(self.syntax_error(format!(
                            "{p}-string: newlines are not allowed in format specifiers for single quoted {p}-strings"
                        )));
                    }
                    self.pos -= 1;
                    f.literal = false;
                    f.in_format_spec = false;
                    return Ok(self.token(middle, start, self.pos));
                }
                let (f_start, p) = (f.start, f.prefix());
                let detected = self.row(self.pos.min(self.src.len()) - 1) + 1;
                let message = if quote_size == 3 {
                    format!("unterminated triple-quoted {p}-string literal (detected at line {detected})")
                } else {
                    format!("unterminated {p}-string literal (detected at line {detected})")
                };
                return Err(self.error_after(f_start, message));
            }
            let c = c.expect("checked above");
            if c == quote {
                end_quote_size += 1;
                continue;
            }
            end_quote_size = 0;
            match c {
                '{' => {
                    if self.src.get(self.pos) != Some(&'{') || in_format_spec {
                        self.pos -= 1;
                        f.expr_start_depth += 1;
                        f.literal = false;
                        f.in_format_spec = false;
                        return Ok(self.middle_before_brace(middle, start));
                    }
                    // `{{`: the MIDDLE ends after the first brace; the second is skipped.
                    let end = self.pos;
                    self.pos += 1;
                    return Ok(self.token(middle, start, end));
                }
                '}' => {
                    if unicode_escape {
                        return Ok(self.token(middle, start, self.pos));
                    }
                    if self.src.get(self.pos) == Some(&'}') && !in_format_spec && f.curly_depth == 0 {
                        let end = self.pos;
                        self.pos += 1;
                        return Ok(self.token(middle, start, end));
                    }
                    self.pos -= 1;
                    f.literal = false;
                    f.in_format_spec = false;
                    return Ok(self.middle_before_brace(middle, start));
                }
                '\\' => {
                    let raw = f.raw;
                    if self.peek() == Some('\r') {
                        self.pos += 1;
                    }
                    match self.peek() {
                        Some('{' | '}') => {} // read again by the loop
                        Some('N') if !raw => {
                            self.pos += 1;
                            if self.peek() == Some('{') {
                                self.pos += 1;
                                unicode_escape = true;
                            }
                        }
                        Some(_) => self.pos += 1,
                        None => {}
                    }
                }
                _ => {}
            }
        }
        // The closing quotes go into the END token, read next.
        self.pos -= quote_size;
        Ok(self.token(middle, start, self.pos))
    }
}

fn is_two_char_operator(a: char, b: char) -> bool {
    matches!(
        (a, b),
        ('!', '=')
            | ('%', '=')
            | ('&', '=')
            | ('*', '*' | '=')
            | ('+', '=')
            | ('-', '=' | '>')
            | ('/', '/' | '=')
            | (':', '=')
            | ('<', '<' | '=' | '>')
            | ('=', '=')
            | ('>', '=' | '>')
            | ('@', '=')
            | ('^', '=')
            | ('|', '=')
    )
}

fn is_three_char_operator(a: char, b: char, c: char) -> bool {
    matches!((a, b, c), ('*', '*', '=') | ('/', '/', '=') | ('<', '<', '=') | ('>', '>', '='))
}

/// Python's `str.isprintable` for the ASCII characters that reach the operator branch.
fn is_printable(c: char) -> bool {
    !c.is_ascii_control()
}
