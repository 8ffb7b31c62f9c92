//! A hostile corpus: each program is contained within its limit, gets the expected label, and the next
//! grade in the same process is still right. Runs in the real sandbox with 1 s per example, 3 s per submission.

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use studentsim::grade::{GradeLimits, Grader, Label, Tests};
use studentsim::sandbox::{Limits, Runtime};

const PER_EXAMPLE: Duration = Duration::from_secs(1);
const PER_SUBMISSION: Duration = Duration::from_secs(3);

const SQUARE: &str = r#"
def square(x):
    """Return x squared.

    >>> square(2)
    4
    >>> square(-3)
    9
    """
"#;
const CORRECT: &str = "def square(x):\n    return x * x\n";

fn grader() -> &'static Grader {
    static GRADER: OnceLock<Grader> = OnceLock::new();
    GRADER.get_or_init(|| {
        let runtime = Runtime::locate(None).unwrap_or_else(|e| panic!("{e}"));
        let limits = GradeLimits {
            sandbox: Limits { per_call: PER_EXAMPLE, per_session: PER_SUBMISSION, ..Limits::default() },
            ..GradeLimits::default()
        };
        Grader::new(&runtime, limits).expect("grader")
    })
}

fn tests() -> &'static Tests {
    static TESTS: OnceLock<Tests> = OnceLock::new();
    TESTS.get_or_init(|| common::block_on(grader().parse_tests(SQUARE)).expect("doctests"))
}

/// Grade `code`; check label, reason (any of `reasons`, when given) and time; then check a correct
/// submission still passes in the same process.
fn contained(code: &str, label: Label, reasons: &[&str]) {
    let start = Instant::now();
    let record = common::block_on(grader().grade("", code, tests()));
    let took = start.elapsed();
    assert_eq!(record.label, label, "{code}\n{record:#?}");
    if !reasons.is_empty() {
        let reason = record.reason.as_deref().unwrap_or("");
        assert!(reasons.contains(&reason), "reason {reason:?} not in {reasons:?} for\n{code}\n{record:#?}");
    }
    assert!(took < PER_SUBMISSION + Duration::from_millis(1500), "took {took:?} for\n{code}");
    assert!(record.examples.iter().all(|e| e.got.len() <= 2048), "got is capped at 2 KiB");
    let after = common::block_on(grader().grade("", CORRECT, tests()));
    assert_eq!(after.label, Label::NoError, "the grade after\n{code}\nis wrong: {after:#?}");
}

#[test]
fn infinite_loop_in_function() {
    contained("def square(x):\n    while True:\n        pass\n", Label::Runtime, &["timeout"]);
}

#[test]
fn infinite_loop_at_module_level() {
    contained("while True:\n    pass\n", Label::Runtime, &["timeout"]);
}

#[test]
fn recursion_bomb() {
    contained("def square(x):\n    return square(x) + 1\n", Label::Runtime, &["RecursionError"]);
}

#[test]
fn recursion_bomb_with_raised_limit() {
    let code = "import sys\nsys.setrecursionlimit(10**7)\ndef square(x):\n    return square(x) + 1\n";
    contained(code, Label::Runtime, &["RecursionError", "stack_overflow", "memory"]);
}

#[test]
fn deeply_nested_data_overflows_the_c_stack() {
    let code = "def square(x):\n    a = []\n    for _ in range(10**6):\n        a = [a]\n    return repr(a)\n";
    contained(code, Label::Runtime, &["RecursionError", "stack_overflow", "memory"]);
}

#[test]
fn deeply_nested_source_fails_to_compile() {
    let code = format!("x = {}1{}\ndef square(x):\n    return x * x\n", "(".repeat(100_000), ")".repeat(100_000));
    contained(&code, Label::Compile, &[]);
}

#[test]
fn memory_bomb() {
    let code = "def square(x):\n    a = []\n    while True:\n        a.append(' ' * 10**7)\n";
    contained(code, Label::Runtime, &["memory"]);
}

#[test]
fn one_huge_allocation() {
    contained("def square(x):\n    return len(bytearray(10**9))\n", Label::Runtime, &["memory"]);
}

#[test]
fn fifty_megabyte_print() {
    contained("def square(x):\n    print('x' * 50_000_000)\n    return x * x\n", Label::Runtime, &["output_limit"]);
}

#[test]
fn endless_printing_at_module_level() {
    contained("while True:\n    print('spam')\n", Label::Runtime, &["output_limit"]);
}

#[test]
fn printing_that_swallows_the_limit() {
    let code = "def square(x):\n    while True:\n        try:\n            print('spam' * 1000)\n        except BaseException:\n            pass\n";
    contained(code, Label::Runtime, &["output_limit", "timeout"]);
}

#[test]
fn writing_to_the_real_stdout_descriptor() {
    let code = "import os\ndef square(x):\n    for _ in range(10**3):\n        os.write(1, b'x' * 4096)\n    return x * x\n";
    contained(code, Label::NoError, &[]);
}

#[test]
fn long_sleep() {
    contained("import time\ndef square(x):\n    time.sleep(100)\n    return x * x\n", Label::Runtime, &["timeout"]);
}

#[test]
fn sys_exit_at_module_level() {
    contained("import sys\nsys.exit(0)\n", Label::Runtime, &["SystemExit"]);
}

#[test]
fn sys_exit_in_an_example() {
    contained("import sys\ndef square(x):\n    sys.exit(0)\n", Label::Runtime, &["SystemExit"]);
}

#[test]
fn os_exit() {
    contained("import os\ndef square(x):\n    os._exit(0)\n", Label::Runtime, &["exit"]);
}

#[test]
fn raising_base_exceptions() {
    for exc in ["SystemExit", "KeyboardInterrupt", "BaseException", "GeneratorExit"] {
        contained(&format!("def square(x):\n    raise {exc}\n"), Label::Runtime, &[exc]);
    }
}

#[test]
fn forged_result_lines() {
    let code = "print('{\"label\": \"no_error\", \"passed\": 2, \"total\": 2, \"pass_rate\": 1.0}')\ndef square(x):\n    print('PASS')\n    return x + x\n";
    contained(code, Label::Logical, &[]);
}

#[test]
fn reading_host_files() {
    for path in ["/etc/passwd", "/proc/self/environ", "../shared/data/README.md", "Cargo.toml"] {
        let code = format!("def square(x):\n    return open({path:?}).read()\n");
        contained(&code, Label::Runtime, &["FileNotFoundError", "PermissionError", "OSError"]);
    }
}

#[test]
fn listing_directories() {
    contained("import os\ndef square(x):\n    return os.listdir('/')\n", Label::Runtime, &["FileNotFoundError", "PermissionError", "OSError"]);
}

#[test]
fn writing_files() {
    let code = "def square(x):\n    open('/tmp/studentsim-escape', 'w').write('x')\n    return x * x\n";
    contained(code, Label::Runtime, &["FileNotFoundError", "PermissionError", "OSError"]);
    assert!(!std::path::Path::new("/tmp/studentsim-escape").exists());
}

#[test]
fn the_environment_is_empty() {
    // Passes only if the guest sees no environment variable at all.
    contained("import os\ndef square(x):\n    return x * x + len(os.environ)\n", Label::NoError, &[]);
}

#[test]
fn importing_host_access_modules() {
    for module in ["socket", "subprocess", "threading", "ctypes", "multiprocessing", "_thread", "signal", "urllib.request"] {
        contained(&format!("import {module}\ndef square(x):\n    return x * x\n"), Label::Runtime, &["ModuleNotFoundError"]);
    }
}

#[test]
fn network_through_the_builtin_socket_module() {
    let code = "import sys\ndef square(x):\n    s = sys.modules['_socket']\n    return x * x\n";
    contained(code, Label::Runtime, &["KeyError"]);
}

#[test]
fn fork_and_spawn() {
    contained("import os\ndef square(x):\n    os.fork()\n    return x * x\n", Label::Runtime, &["AttributeError", "OSError"]);
    contained("import os\ndef square(x):\n    os.system('ls')\n    return x * x\n", Label::Runtime, &["AttributeError", "OSError"]);
}

#[test]
fn replacing_builtins() {
    let code = "import builtins\nbuiltins.repr = lambda v: '4'\nbuiltins.print = lambda *a, **k: None\ndef square(x):\n    return x + 1\n";
    contained(code, Label::Logical, &[]);
}

#[test]
fn replacing_the_display_hook_and_stdout() {
    let code = "import sys\nsys.displayhook = lambda v: sys.__stdout__.write('4\\n')\nsys.stdout = None\ndef square(x):\n    return x + 1\n";
    contained(code, Label::Logical, &[]);
}

#[test]
fn deleting_harness_globals() {
    let code = "import sys\nh = sys.modules['harness']\nfor n in list(vars(h)):\n    if not n.startswith('__'):\n        delattr(h, n)\ndef square(x):\n    return x + 1\n";
    contained(code, Label::Logical, &[]);
}

#[test]
fn replacing_harness_functions() {
    // Redirect the export so every example "observes" the expected output.
    let code = "import sys, wit_world\nh = sys.modules['harness']\nwant = iter(['4\\n', '9\\n'])\nh.WitWorld.run_example = lambda self, g, s: wit_world.Observed(output=next(want), display='', exception=None, output_limited=False)\ndef square(x):\n    return x + 1\n";
    contained(code, Label::Runtime, &["exit"]);
}

#[test]
fn replacing_the_result_class() {
    let code = "import wit_world\nwit_world.Observed.__init__ = lambda self, **k: None\ndef square(x):\n    return x + 1\n";
    contained(code, Label::Runtime, &["exit"]);
}

#[test]
fn hard_coding_is_still_graded_on_the_examples() {
    // Not an escape: the only way to pass without computing is to print what the examples want.
    contained("def square(x):\n    return {2: 4, -3: 9}[x]\n", Label::NoError, &[]);
}

#[test]
fn null_bytes_in_the_source() {
    contained("def square(x):\n    return x * x\0\n", Label::Compile, &[]);
}

#[test]
fn exceptions_whose_str_raises() {
    let code = "class E(Exception):\n    def __str__(self):\n        raise E()\ndef square(x):\n    raise E()\n";
    contained(code, Label::Runtime, &["E"]);
}
