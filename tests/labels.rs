//! Every label and outcome on crafted submissions, through the real sandbox.

mod common;

use common::grade;
use studentsim::grade::{Label, Outcome};

const ADD: &str = r#"
def add(a, b):
    """Add two numbers.

    >>> add(1, 2)
    3
    >>> add(-1, 1)
    0
    >>> add(2, 2)
    4
    """
"#;

#[test]
fn correct_code_is_no_error() {
    let r = grade(ADD, "def add(a, b):\n    return a + b\n");
    assert_eq!(r.label, Label::NoError, "{r:#?}");
    assert_eq!((r.passed, r.total), (3, 3));
    assert_eq!(r.pass_rate, 1.0);
    assert!(r.examples.iter().all(|e| e.outcome == Outcome::Pass));
}

#[test]
fn wrong_output_is_logical() {
    let r = grade(ADD, "def add(a, b):\n    return a * b\n");
    assert_eq!(r.label, Label::Logical, "{r:#?}");
    assert_eq!((r.passed, r.total), (1, 3));
    assert_eq!(r.examples[0].got, "2\n");
    assert_eq!(r.examples[0].outcome, Outcome::Fail);
}
