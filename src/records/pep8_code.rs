//! pycodestyle 2.14.0's error and warning codes, each with the description pycodestyle's documentation gives it.

use std::fmt;
use std::str::FromStr;

macro_rules! pep8_codes {
    ($($code:ident => $text:literal,)*) => {
        /// One of pycodestyle's codes. Declared in code order, so codes sort as their names do.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Pep8Code {
            $($code,)*
        }

        impl Pep8Code {
            pub const ALL: &[Pep8Code] = &[$(Pep8Code::$code,)*];

            /// The code as pycodestyle prints it: `E225`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Pep8Code::$code => stringify!($code),)*
                }
            }

            /// What the code means, as pycodestyle's documentation describes it.
            pub fn text(self) -> &'static str {
                match self {
                    $(Pep8Code::$code => $text,)*
                }
            }
        }
    };
}

pep8_codes! {
    E101 => "indentation contains mixed spaces and tabs",
    E111 => "indentation is not a multiple of four",
    E112 => "expected an indented block",
    E113 => "unexpected indentation",
    E114 => "indentation is not a multiple of four (comment)",
    E115 => "expected an indented block (comment)",
    E116 => "unexpected indentation (comment)",
    E117 => "over-indented",
    E121 => "continuation line under-indented for hanging indent",
    E122 => "continuation line missing indentation or outdented",
    E123 => "closing bracket does not match indentation of opening bracket's line",
    E124 => "closing bracket does not match visual indentation",
    E125 => "continuation line with same indent as next logical line",
    E126 => "continuation line over-indented for hanging indent",
    E127 => "continuation line over-indented for visual indent",
    E128 => "continuation line under-indented for visual indent",
    E129 => "visually indented line with same indent as next logical line",
    E131 => "continuation line unaligned for hanging indent",
    E133 => "closing bracket is missing indentation",
    E201 => "whitespace after '('",
    E202 => "whitespace before ')'",
    E203 => "whitespace before ':'",
    E204 => "whitespace after decorator '@'",
    E211 => "whitespace before '('",
    E221 => "multiple spaces before operator",
    E222 => "multiple spaces after operator",
    E223 => "tab before operator",
    E224 => "tab after operator",
    E225 => "missing whitespace around operator",
    E226 => "missing whitespace around arithmetic operator",
    E227 => "missing whitespace around bitwise or shift operator",
    E228 => "missing whitespace around modulo operator",
    E231 => "missing whitespace after ',', ';', or ':'",
    E241 => "multiple spaces after ','",
    E242 => "tab after ','",
    E251 => "unexpected spaces around keyword / parameter equals",
    E252 => "missing whitespace around parameter equals",
    E261 => "at least two spaces before inline comment",
    E262 => "inline comment should start with '# '",
    E265 => "block comment should start with '# '",
    E266 => "too many leading '#' for block comment",
    E271 => "multiple spaces after keyword",
    E272 => "multiple spaces before keyword",
    E273 => "tab after keyword",
    E274 => "tab before keyword",
    E275 => "missing whitespace after keyword",
    E301 => "expected 1 blank line, found 0",
    E302 => "expected 2 blank lines, found 0",
    E303 => "too many blank lines (3)",
    E304 => "blank lines found after function decorator",
    E305 => "expected 2 blank lines after end of function or class",
    E306 => "expected 1 blank line before a nested definition",
    E401 => "multiple imports on one line",
    E402 => "module level import not at top of file",
    E501 => "line too long (82 > 79 characters)",
    E502 => "the backslash is redundant between brackets",
    E701 => "multiple statements on one line (colon)",
    E702 => "multiple statements on one line (semicolon)",
    E703 => "statement ends with a semicolon",
    E704 => "multiple statements on one line (def)",
    E711 => "comparison to None should be 'if cond is None:'",
    E712 => "comparison to True should be 'if cond is True:' or 'if cond:'",
    E713 => "test for membership should be 'not in'",
    E714 => "test for object identity should be 'is not'",
    E721 => "do not compare types, for exact checks use `is` / `is not`, for instance checks use `isinstance()`",
    E722 => "do not use bare except, specify exception instead",
    E731 => "do not assign a lambda expression, use a def",
    E741 => "do not use variables named 'l', 'O', or 'I'",
    E742 => "do not define classes named 'l', 'O', or 'I'",
    E743 => "do not define functions named 'l', 'O', or 'I'",
    E901 => "SyntaxError or IndentationError",
    E902 => "IOError",
    W191 => "indentation contains tabs",
    W291 => "trailing whitespace",
    W292 => "no newline at end of file",
    W293 => "blank line contains whitespace",
    W391 => "blank line at end of file",
    W503 => "line break before binary operator",
    W504 => "line break after binary operator",
    W505 => "doc line too long (82 > 79 characters)",
    W605 => "invalid escape sequence '\\x'",
}

impl Pep8Code {
    /// In pycodestyle's `DEFAULT_IGNORE` (`E121,E123,E126,E226,E24,E704,W503,W504`): reported by its checks, never
    /// counted under the default options the study used.
    pub fn ignored_by_default(self) -> bool {
        use Pep8Code::*;
        matches!(self, E121 | E123 | E126 | E226 | E241 | E242 | E704 | W503 | W504)
    }
}

/// A code pycodestyle 2.14.0 does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a pycodestyle 2.14.0 code")]
pub struct UnknownCode(pub String);

impl FromStr for Pep8Code {
    type Err = UnknownCode;

    fn from_str(s: &str) -> Result<Self, UnknownCode> {
        Pep8Code::ALL.iter().copied().find(|code| code.as_str() == s).ok_or_else(|| UnknownCode(s.to_owned()))
    }
}

impl fmt::Display for Pep8Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Pep8Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Pep8Code {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<str>>::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::Pep8Code;

    #[test]
    fn codes_are_in_order_and_read_back() {
        assert!(Pep8Code::ALL.windows(2).all(|w| w[0].as_str() < w[1].as_str()), "declared in code order");
        for &code in Pep8Code::ALL {
            assert_eq!(code.as_str().parse::<Pep8Code>().unwrap(), code);
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{code}\""));
            assert_eq!(serde_json::from_str::<Pep8Code>(&json).unwrap(), code);
        }
        assert!("E999".parse::<Pep8Code>().is_err(), "pycodestyle has no E999");
        assert_eq!(Pep8Code::E225.text(), "missing whitespace around operator");
    }
}
