//! The tokens pycodestyle's checks read: CPython 3.14's `tokenize.TokenInfo`.

/// A token type, numbered as CPython 3.14's `token` module numbers it (`tokenize` reports every operator as `OP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    EndMarker = 0,
    Name = 1,
    Number = 2,
    String = 3,
    Newline = 4,
    Indent = 5,
    Dedent = 6,
    Op = 55,
    FStringStart = 59,
    FStringMiddle = 60,
    FStringEnd = 61,
    TStringStart = 62,
    TStringMiddle = 63,
    TStringEnd = 64,
    Comment = 65,
    Nl = 66,
}

/// One token: its type, text, 1-based line and 0-based character column of its start and end, and the
/// physical line(s) it was read from (`TokenInfo.line`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub text: String,
    pub start: (u32, u32),
    pub end: (u32, u32),
    pub line: String,
}
