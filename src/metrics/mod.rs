//! The reference study's realism metrics, as pure functions of code (PEP 8 counts from the native pycodestyle in
//! `pep8`, or from pycodestyle itself inside the sandbox: `grade::Grader::pep8`).

pub mod ast_shape;
pub mod embed;
pub mod functionality;
pub mod pca;
pub mod pep8;
pub mod progress;
pub mod semantics;
pub mod style;

pub use ast_shape::{AstShape, ast_shape};

/// Lines of the stripped code: the number of `\n` plus one.
pub fn lines(code: &str) -> usize {
    code.trim().matches('\n').count() + 1
}

/// Characters (Unicode code points) of the stripped code.
pub fn chars(code: &str) -> usize {
    code.trim().chars().count()
}

/// Character Levenshtein distance with unit costs, not normalized. Bit-parallel (rapidfuzz, Hyyrö's algorithm):
/// a pair of 300-character programs takes about a microsecond; on bytes when both are ASCII, where a byte is a
/// character.
pub fn edit_distance(a: &str, b: &str) -> usize {
    use rapidfuzz::distance::levenshtein::distance;
    if a.is_ascii() && b.is_ascii() { distance(a.bytes(), b.bytes()) } else { distance(a.chars(), b.chars()) }
}

/// 1 − Levenshtein / the longer length, on stripped text (1 for two empty texts).
pub fn similarity(a: &str, b: &str) -> f64 {
    let (a, b) = (a.trim(), b.trim());
    let longest = a.chars().count().max(b.chars().count());
    if longest == 0 { 1.0 } else { 1.0 - edit_distance(a, b) as f64 / longest as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_edits() {
        assert_eq!((lines("  x = 1\n\n"), chars("  x = 1\n\n")), (1, 5));
        assert_eq!((lines("a\nb\n"), chars("é\n")), (2, 1));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
