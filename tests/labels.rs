//! Every label and outcome on crafted submissions, through the real sandbox.

use crate::common;

use common::grade;
use studentsim::grade::{Compare, Label, Outcome};

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

#[test]
fn syntax_indentation_and_tab_errors_are_compile() {
    for (code, reason) in [
        ("def add(a, b)\n    return a + b\n", "SyntaxError"),
        ("def add(a, b):\nreturn a + b\n", "IndentationError"),
        ("def add(a, b):\n\tif a:\n        return a + b\n", "TabError"),
    ] {
        let r = grade(ADD, code);
        assert_eq!(r.label, Label::Compile, "{code}: {r:#?}");
        assert_eq!(r.reason.as_deref(), Some(reason), "{code}");
        assert!(r.message.as_deref().unwrap_or("").starts_with(reason), "{r:#?}");
        assert_eq!((r.passed, r.total, r.pass_rate), (0, 3, 0.0));
        assert!(r.examples.iter().all(|e| e.outcome == Outcome::NotRun));
    }
}

#[test]
fn module_level_exception_is_runtime() {
    let r = grade(ADD, "x = undefined_name\ndef add(a, b):\n    return a + b\n");
    assert_eq!(r.label, Label::Runtime);
    assert_eq!(r.reason.as_deref(), Some("NameError"));
    assert!(r.message.as_deref().unwrap().contains("undefined_name"), "{r:#?}");
}

#[test]
fn exception_in_one_example_is_runtime_and_others_still_count() {
    let r = grade(ADD, "def add(a, b):\n    if a < 0:\n        raise ValueError('negative')\n    return a + b\n");
    assert_eq!(r.label, Label::Runtime, "{r:#?}");
    assert_eq!(r.reason.as_deref(), Some("ValueError"));
    assert_eq!((r.passed, r.total), (2, 3), "pass rate is still computed for runtime");
    let bad = &r.examples[1];
    assert_eq!(bad.outcome, Outcome::Error);
    assert_eq!(bad.exception.as_deref(), Some("ValueError"));
    assert!(bad.got.starts_with("Traceback (most recent call last):"), "{}", bad.got);
    assert!(bad.got.ends_with("ValueError: negative\n"), "{}", bad.got);
}

#[test]
fn an_example_that_does_not_compile_reports_its_syntax_error() {
    // Examples are compiled once per problem; one that does not compile is compiled again in the grade, where
    // its SyntaxError is the example's outcome, and the examples after it still run.
    let todo = "def add(a, b):\n    \"\"\"\n    >>> add(1,\n    3\n    >>> add(1, 2)\n    3\n    \"\"\"\n";
    let r = grade(todo, "def add(a, b):\n    return a + b\n");
    assert_eq!(r.label, Label::Runtime, "{r:#?}");
    assert_eq!(r.examples[0].outcome, Outcome::Error, "{r:#?}");
    assert_eq!(r.examples[0].exception.as_deref(), Some("SyntaxError"), "{r:#?}");
    assert!(r.examples[0].got.contains("was never closed"), "{}", r.examples[0].got);
    assert_eq!(r.examples[1].outcome, Outcome::Pass, "{r:#?}");
}

#[test]
fn a_submission_cannot_change_how_the_examples_compile() {
    // The examples are compiled before any submission runs. Compiled in the grade, this example's SyntaxWarning
    // ("is" with a literal) became a SyntaxError under the submission's warning filter.
    let todo = "def add(a, b):\n    \"\"\"\n    >>> add(1, 2) is 3\n    True\n    \"\"\"\n";
    let code = "import warnings\nwarnings.simplefilter('error')\ndef add(a, b):\n    return a + b\n";
    let r = grade(todo, code);
    assert_eq!(r.label, Label::NoError, "{r:#?}");
}

#[test]
fn runtime_outranks_logical() {
    let r = grade(ADD, "def add(a, b):\n    if a == 2:\n        return 1 / 0\n    return a - b\n");
    assert_eq!(r.label, Label::Runtime);
    assert_eq!(r.reason.as_deref(), Some("ZeroDivisionError"));
}

const RAISES: &str = r#"
def check_age(age):
    """Return the age, or raise ValueError for a negative one.

    >>> check_age(3)
    3
    >>> check_age(-1)
    Traceback (most recent call last):
      ...
    ValueError: age must be >= 0
    """
"#;

#[test]
fn expected_exceptions_match_like_doctest() {
    let right = "def check_age(age):\n    if age < 0:\n        raise ValueError('age must be >= 0')\n    return age\n";
    assert_eq!(grade(RAISES, right).label, Label::NoError);

    let other_message = right.replace("age must be >= 0", "negative");
    let r = grade(RAISES, &other_message);
    assert_eq!((r.label, r.examples[1].outcome), (Label::Logical, Outcome::Fail), "{r:#?}");

    let other_type = right.replace("ValueError", "TypeError");
    let r = grade(RAISES, &other_type);
    assert_eq!((r.label, r.examples[1].outcome), (Label::Runtime, Outcome::Error), "{r:#?}");

    let no_raise = "def check_age(age):\n    return age\n";
    let r = grade(RAISES, no_raise);
    assert_eq!((r.label, r.examples[1].outcome), (Label::Logical, Outcome::Fail), "{r:#?}");
}

const STATEFUL: &str = r#"
class Counter:
    """A counter.

    >>> c = Counter()
    >>> c.tick()
    >>> c.tick()
    >>> c.count
    2
    """

def uses_c():
    """Examples of another docstring do not see `c`.

    >>> 'c' in globals()
    False
    >>> print("a\\n\\nb")
    a
    <BLANKLINE>
    b
    """
"#;

#[test]
fn examples_of_one_docstring_share_globals_and_docstrings_do_not() {
    let code = "class Counter:\n    def __init__(self):\n        self.count = 0\n    def tick(self):\n        self.count += 1\ndef uses_c():\n    pass\n";
    let r = grade(STATEFUL, code);
    assert_eq!(r.label, Label::NoError, "{r:#?}");
    assert_eq!(r.total, 6);
    assert_eq!(r.examples[0].group, "Counter");
    assert_eq!(r.examples[4].group, "uses_c");
}

#[test]
fn fixed_code_runs_before_the_submission() {
    let todo = "def area(r):\n    \"\"\"\n    >>> area(1)\n    3.14\n    \"\"\"\n";
    let tests = common::tests_for(todo);
    let r = common::block_on(common::grader().grade("PI = 3.14\n", "def area(r):\n    return PI * r * r\n", &tests));
    assert_eq!(r.label, Label::NoError, "{r:#?}");
    let r = common::block_on(common::grader().grade("", "def area(r):\n    return PI * r * r\n", &tests));
    assert_eq!((r.label, r.reason.as_deref()), (Label::Runtime, Some("NameError")));
}

#[test]
fn value_comparison_ignores_prints() {
    let noisy = "def add(a, b):\n    print('debug', a, b)\n    return a + b\n";
    let tests = common::tests_for(ADD);
    let output = common::block_on(common::grader().grade("", noisy, &tests));
    assert_eq!(output.label, Label::Logical, "doctest sees the prints");
    let value = common::block_on(common::grader().grade("", noisy, &tests.clone().comparing(Compare::Value)));
    assert_eq!(value.label, Label::NoError, "{value:#?}");
}

/// Compared as values, a dict built in another insertion order equals the expected one (as Python's `==` says),
/// and so do `1.0` for `1` and a set printed in another order; a wrong value still fails, and standard doctest
/// (output comparison) keeps comparing text.
#[test]
fn value_comparison_compares_values_not_reprs() {
    let todo = "def swap_keys_values(d):\n    \"\"\"\n    >>> swap_keys_values({'a': 1, 'b': 2})\n    {1: 'a', 2: 'b'}\n    \"\"\"\n";
    let tests = common::tests_for(todo);
    let reversed = "def swap_keys_values(d):\n    out = {}\n    for k in reversed(list(d)):\n        out[d[k]] = k\n    return out\n";
    let wrong = "def swap_keys_values(d):\n    return {v: v for v in d.values()}\n";
    let value =
        |code: &str| common::block_on(common::grader().grade("", code, &tests.clone().comparing(Compare::Value)));
    let r = value(reversed);
    assert_eq!(r.label, Label::NoError, "{{2: 'b', 1: 'a'}} equals {{1: 'a', 2: 'b'}}: {r:#?}");
    assert_eq!(r.examples[0].got, "{2: 'b', 1: 'a'}\n", "the record keeps what the program returned");
    assert_eq!(value(wrong).label, Label::Logical);
    let output = common::block_on(common::grader().grade("", reversed, &tests));
    assert_eq!(output.label, Label::Logical, "standard doctest compares the printed text");

    let numbers = common::tests_for("def f():\n    \"\"\"\n    >>> f()\n    [1, {1, 2, 3}]\n    \"\"\"\n");
    let r = common::block_on(common::grader().grade(
        "",
        "def f():\n    return [1.0, {3, 2, 1.0}]\n",
        &numbers.comparing(Compare::Value),
    ));
    assert_eq!(r.label, Label::NoError, "{r:#?}");
}

#[test]
fn got_is_truncated_to_two_kilobytes() {
    let r = grade(ADD, "def add(a, b):\n    return 'x' * 10_000\n");
    assert_eq!(r.label, Label::Logical);
    assert_eq!(r.examples[0].got.len(), 2048);
}

#[test]
fn no_examples_parse_error_is_reported() {
    let err = common::block_on(common::grader().parse_tests("def f(:\n")).unwrap_err();
    assert!(err.to_string().starts_with("line 1:"), "{err}");
}

#[test]
fn grading_is_deterministic() {
    let code = "import random, time\nrandom.seed()\ndef add(a, b):\n    print(random.random(), time.time(), id(object()) % 1000)\n    return a + b + random.randint(0, 1)\n";
    let tests = common::tests_for(ADD);
    let first = common::block_on(common::grader().grade("", code, &tests));
    assert_eq!(first.label, Label::Logical, "the random output makes it fail: {first:#?}");
    for _ in 0..49 {
        let again = common::block_on(common::grader().grade("", code, &tests));
        assert_eq!(again, first);
    }
}

#[test]
fn curated_modules_import_and_others_do_not() {
    let curated = "abc array bisect calendar cmath collections collections.abc copy dataclasses datetime decimal enum \
                   fractions functools heapq itertools json keyword math numbers operator pprint random re statistics \
                   string textwrap time typing unicodedata";
    let imports: String = curated.split_whitespace().map(|m| format!("import {m}\n")).collect();
    let code = format!("{imports}def add(a, b):\n    return a + b\n");
    let r = grade(ADD, &code);
    assert_eq!(r.label, Label::NoError, "{r:#?}");
    for missing in ["xml.dom", "sqlite3", "numpy", "tkinter"] {
        let r = grade(ADD, &format!("import {missing}\ndef add(a, b):\n    return a + b\n"));
        assert_eq!((r.label, r.reason.as_deref()), (Label::Runtime, Some("ModuleNotFoundError")), "{missing}");
    }
}

/// Progress that keeps every call, to see how many grades a batch ran.
#[derive(Default)]
struct Calls(std::sync::Mutex<Vec<(&'static str, u64)>>);

impl studentsim::records::Progress for Calls {
    fn start(&self, total: u64) {
        self.0.lock().unwrap().push(("start", total));
    }
    fn advance(&self, n: u64) {
        self.0.lock().unwrap().push(("advance", n));
    }
}

#[test]
fn a_code_submitted_twice_to_a_problem_is_graded_once() {
    use studentsim::grade::batch::grade_distinct;
    let registry =
        studentsim::problems::Registry::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("problems"))
            .unwrap();
    let (sum, vowels) = (registry.get("sum-digits").unwrap(), registry.get("count-vowels").unwrap());
    let wrong = "def sum_digits(n):\n    return 0\n";
    let items = vec![
        (sum, wrong.to_owned()),
        (sum, sum.solution.clone()),
        (sum, wrong.to_owned()),
        (sum, wrong.to_owned()),
        // the same text on another problem is another grade
        (vowels, wrong.to_owned()),
    ];
    let calls = Calls::default();
    let graded = common::block_on(grade_distinct(&common::grader(), items, 2, &calls)).unwrap();
    let labels: Vec<Label> = graded.iter().map(|g| g.record.label).collect();
    assert_eq!(labels, [Label::Logical, Label::NoError, Label::Logical, Label::Logical, Label::Runtime]);
    // three grades (one advance each as it finishes), then the two copies at once
    assert_eq!(*calls.0.lock().unwrap(), [("advance", 1), ("advance", 1), ("advance", 1), ("advance", 2)]);
    assert!(graded[2].elapsed == graded[0].elapsed && graded[3].elapsed == graded[0].elapsed, "copies share a grade");
    assert_ne!(graded[0].elapsed, graded[4].elapsed, "another problem's grade is its own");
}

/// A remembering grader (what rollouts use) grades the same code against the same tests and limits once: the second
/// grade of a program that loops until its example limit returns the first record without running it again (no
/// time passes), while other code, other tests or a grader with other limits grade anew.
#[test]
fn a_remembering_grader_grades_the_same_code_once() {
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    use studentsim::grade::{GradeLimits, GradeMemo, Grader};
    use studentsim::sandbox::{Limits, Runtime};

    let runtime = Runtime::locate(None).unwrap_or_else(|e| panic!("{e}"));
    let memo = Arc::new(GradeMemo::default());
    let with_limit = |per_call: Duration| {
        let limits = GradeLimits { sandbox: Limits { per_call, ..Limits::default() }, ..GradeLimits::default() };
        Grader::new(&runtime, limits).expect("grader").remembering(Arc::clone(&memo))
    };
    let (grader, stricter) = (with_limit(Duration::from_millis(400)), with_limit(Duration::from_millis(300)));
    let tests = common::block_on(grader.parse_tests(ADD)).expect("doctests");
    let looping = "def add(a, b):\n    while True:\n        pass\n";
    let timed = |grader: &Grader, code: &str, tests: &studentsim::grade::Tests| {
        let started = Instant::now();
        let record = common::block_on(grader.grade("", code, tests));
        (record, started.elapsed())
    };

    let (first, took) = timed(&grader, looping, &tests);
    assert_eq!((first.label, first.reason.as_deref()), (Label::Runtime, Some("timeout")), "{first:#?}");
    assert!(took >= Duration::from_millis(400), "the first grade ran the loop to its limit: {took:?}");
    assert_eq!(memo.len(), 1);
    let (again, took) = timed(&grader, looping, &tests);
    assert_eq!(again, first, "the remembered record");
    assert!(took < Duration::from_millis(100), "the second grade did not run the loop again: {took:?}");
    assert_eq!(memo.len(), 1);

    let (_, took) = timed(&stricter, looping, &tests);
    assert!(took >= Duration::from_millis(300), "other limits grade again: {took:?}");
    let other_tests = tests.clone().limited(Some(Duration::from_millis(200)));
    let (_, took) = timed(&grader, looping, &other_tests);
    assert!(took >= Duration::from_millis(200), "other tests grade again: {took:?}");
    let (fixed, _) = timed(&grader, "def add(a, b):\n    return a + b\n", &tests);
    assert_eq!(fixed.label, Label::NoError);
    assert_eq!(memo.len(), 4, "one record per code, tests and limits");
}
