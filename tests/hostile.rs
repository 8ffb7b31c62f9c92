//! A hostile corpus: each program is contained within its limit, gets the expected label, and the next
//! grade in the same process is still right. Runs in the real sandbox with 1 s per example, 3 s per submission.

use crate::common;

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
            reveal_hidden: false,
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
    // The cap is counted by the host on the stream itself, so the raw descriptor is no way around it.
    let code =
        "import os\ndef square(x):\n    for _ in range(10**3):\n        os.write(1, b'x' * 4096)\n    return x * x\n";
    contained(code, Label::Runtime, &["output_limit"]);
}

// Issue 28: the output cap lived in the harness's closure cells, where a submission could raise or reset it.
// These attacks look for any cap the guest can reach and lift it; the host's count does not move.

/// Every closure cell and dict the guest can find that looks like output-cap state, set to let anything through.
const LIFT_EVERY_CAP: &str = "import gc, sys
def lift():
    for o in gc.get_objects():
        if isinstance(o, dict) and 'cap' in o and 'groups' in o:
            o['cap'] = 10**12
    w = type(sys.stdout).write
    for cell in getattr(w, '__closure__', None) or ():
        try:
            v = cell.cell_contents
        except ValueError:
            continue
        if isinstance(v, int):
            cell.cell_contents = 10**12
        elif isinstance(v, list) and v and isinstance(v[0], (int, bool)):
            v[0] = 0 if isinstance(v[0], int) and not isinstance(v[0], bool) else False
";

#[test]
fn raising_the_output_cap_from_the_guest() {
    let code = format!(
        "{LIFT_EVERY_CAP}def square(x):\n    lift()\n    for _ in range(100):\n        print('x' * 1_000_000)\n    return x * x\n"
    );
    contained(&code, Label::Runtime, &["output_limit"]);
}

#[test]
fn resetting_the_output_count_between_prints() {
    // Under the old harness, printing 1.2 MB per call with the count reset after each print got `no_error`.
    let code = format!(
        "{LIFT_EVERY_CAP}def square(x):\n    for _ in range(20):\n        lift()\n        print('y' * 60_000)\n    return x * x\n"
    );
    contained(&code, Label::Runtime, &["output_limit"]);
}

#[test]
fn an_exception_too_long_to_keep() {
    // A 40 MB message used to become a 40 MB record; every text in it is now bounded and says it was cut.
    let code = "def square(x):\n    raise ValueError('x' * 40_000_000)\n";
    let record = common::block_on(grader().grade("", code, tests()));
    assert_eq!((record.label, record.reason.as_deref()), (Label::Runtime, Some("ValueError")), "{record:#?}");
    let size = serde_json::to_string(&record).unwrap().len();
    assert!(size < 16 << 10, "the record is {size} bytes");
    assert!(record.examples[0].got.contains("…[cut:"), "a cut text says so: {:?}", record.examples[0].got);
    contained(code, Label::Runtime, &["ValueError"]);
}

#[test]
fn an_exception_class_with_a_huge_name() {
    let code = "def square(x):\n    raise type('E' * 10_000_000, (Exception,), {})()\n";
    let record = common::block_on(grader().grade("", code, tests()));
    assert_eq!(record.label, Label::Runtime, "{record:#?}");
    let reason = record.reason.as_deref().unwrap_or("");
    assert!(
        reason.starts_with("EEEE") && reason.len() <= studentsim::grade::NAME_LIMIT,
        "reason of {} bytes",
        reason.len()
    );
    assert!(serde_json::to_string(&record).unwrap().len() < 16 << 10);
}

#[test]
fn a_module_level_error_message_too_long_to_keep() {
    let record = common::block_on(grader().grade("", "raise RuntimeError('m' * 30_000_000)\n", tests()));
    assert_eq!((record.label, record.reason.as_deref()), (Label::Runtime, Some("RuntimeError")), "{record:#?}");
    let message = record.message.as_deref().unwrap_or("");
    assert!(
        message.len() <= studentsim::grade::TEXT_LIMIT && message.contains("…[cut:"),
        "message of {} bytes",
        message.len()
    );
}

#[test]
fn printing_a_lone_surrogate_beside_a_correct_value() {
    // doctest would call this a failed example (the output differs); it used to trap the instance instead.
    let code = "def square(x):\n    print('\\ud800')\n    return x * x\n";
    let record = common::block_on(grader().grade("", code, tests()));
    assert_eq!(record.label, Label::Logical, "{record:#?}");
    assert!(record.examples.iter().all(|e| e.limit.is_none()), "no limit or trap: {record:#?}");
    contained(code, Label::Logical, &[]);
    // and a lone surrogate in an exception's message is escaped, not a trap
    contained("def square(x):\n    raise ValueError('\\udc80')\n", Label::Runtime, &["ValueError"]);
}

#[test]
fn emptying_the_tamper_checks_state() {
    // The tamper check compared the exports with a list of originals a submission could find and clear; it is
    // a tuple now, so the redirect below is still caught (it used to pass as `logical`).
    let code = "import gc, sys, wit_world
h = sys.modules['harness']
for o in gc.get_objects():
    if isinstance(o, (list, tuple)) and o and isinstance(o[0], tuple) and len(o[0]) == 2 and o[0][0] is h.WitWorld:
        try:
            o.clear()
        except AttributeError:
            pass
h.WitWorld.run_example = lambda self, g, s, c: wit_world.Ending.RETURNED
def square(x):
    return x + 1
";
    contained(code, Label::Runtime, &["exit"]);
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
    contained(
        "import os\ndef square(x):\n    return os.listdir('/')\n",
        Label::Runtime,
        &["FileNotFoundError", "PermissionError", "OSError"],
    );
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
    for module in
        ["socket", "subprocess", "threading", "ctypes", "multiprocessing", "_thread", "signal", "urllib.request"]
    {
        contained(
            &format!("import {module}\ndef square(x):\n    return x * x\n"),
            Label::Runtime,
            &["ModuleNotFoundError"],
        );
    }
}

#[test]
fn network_through_the_builtin_socket_module() {
    let code = "import sys\ndef square(x):\n    s = sys.modules['_socket']\n    return x * x\n";
    contained(code, Label::Runtime, &["KeyError"]);
}

#[test]
fn fork_and_spawn() {
    contained(
        "import os\ndef square(x):\n    os.fork()\n    return x * x\n",
        Label::Runtime,
        &["AttributeError", "OSError"],
    );
    contained(
        "import os\ndef square(x):\n    os.system('ls')\n    return x * x\n",
        Label::Runtime,
        &["AttributeError", "OSError"],
    );
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
    let code = "import sys, wit_world\nh = sys.modules['harness']\nwant = iter(['4\\n', '9\\n'])\nh.WitWorld.run_example = lambda self, g, s, c: (print(next(want), end=''), wit_world.Observed(exception=None))[1]\ndef square(x):\n    return x + 1\n";
    contained(code, Label::Runtime, &["exit"]);
}

#[test]
fn replacing_marshal_loads() {
    // The examples arrive compiled and marshalled; the harness loads them with the `marshal.loads` it bound before
    // any submission ran, so swapping the module's function cannot swap the examples for code that prints the
    // expected outputs.
    let code = "import marshal\nforged = iter(['print(4)', 'print(9)'])\n\
                marshal.loads = lambda data: compile(next(forged), '<forged>', 'exec')\n\
                def square(x):\n    return x + 1\n";
    contained(code, Label::Logical, &[]);
}

#[test]
fn changing_the_result_enum() {
    // Each would make a call that raised read as one that returned, or the other way round.
    let code = "import wit_world\nwit_world.Ending.RAISED._value_ = 0\ndef square(x):\n    return x + 1\n";
    contained(code, Label::Runtime, &["exit"]);
    let code =
        "import wit_world\nwit_world.Ending.value = property(lambda self: 0)\ndef square(x):\n    return x + 1\n";
    contained(code, Label::Runtime, &["exit"]);
}

#[test]
fn handing_the_host_texts_directly() {
    // The guest can call the host's `report-text` itself, with any slot and any size: what the host keeps stays
    // bounded, an unknown slot ends the instance, and a text sent without raising changes nothing.
    let code = "import wit_world\ndef square(x):\n    big = 'T' * 20_000_000\n    for slot in range(4):\n        \
                wit_world.report_text(slot, big)\n    raise ValueError('v')\n";
    let record = common::block_on(grader().grade("", code, tests()));
    assert_eq!((record.label, record.reason.as_deref()), (Label::Runtime, Some("ValueError")), "{record:#?}");
    assert!(serde_json::to_string(&record).unwrap().len() < 16 << 10, "{record:#?}");
    contained("import wit_world\ndef square(x):\n    wit_world.report_text(9, 'x')\n", Label::Runtime, &["trap"]);
    contained(
        "import wit_world\ndef square(x):\n    wit_world.report_text(0, 'E')\n    return x * x\n",
        Label::NoError,
        &[],
    );
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

#[test]
fn the_builtin_modules_behind_the_importer_are_inert() {
    // What docs/reference.md promises once a submission removes the importer that refuses them: importable, but no
    // socket, no thread, no signal and nothing to select on. `square` is right only if each behaves so.
    let code = "import sys
sys.meta_path[:] = [m for m in sys.meta_path if 'Blocked' not in repr(m)]
import _socket, _thread, _signal, select
def inert():
    try:
        _socket.socket()
        return False
    except PermissionError:
        pass
    try:
        _thread.start_new_thread(print, ())
        return False
    except RuntimeError:
        pass
    return select.select([], [], [], 0) == ([], [], [])
def square(x):
    return x * x if inert() else None
";
    contained(code, Label::NoError, &[]);
}
