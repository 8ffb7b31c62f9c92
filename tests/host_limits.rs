//! Issue 28: what one grade may cost the host, measured on the real binary. A grade's peak resident memory stays
//! within the guest's memory cap plus a fixed margin under every output, memory and exception attack, and plain
//! output never lets submission text start a line or drive the terminal. A test binary of its own (Cargo.toml says
//! why).

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

mod common;

/// The guest's memory cap for these grades (`--memory-mib`).
const GUEST_MIB: u64 = 96;
/// What a grade may cost on top of the guest's memory: the process, the compiled component, the pooled instance's
/// tables and stacks, two output buffers of at most the cap each, and the texts the guest hands over (exception
/// texts, read in place in the guest's memory: at most 32 KiB of each is copied). Measured: about 75 MiB for a submission that does nothing (docs/reference.md, "Where each limit is enforced").
const HOST_MARGIN_MIB: u64 = 160;

/// Peak resident memory (MiB) of `studentsim grade --json` on `code` for problem sum-digits, and its stdout.
// The child is reaped by `wait4` (for its resource usage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn grade_peak_mib(code: &str) -> (u64, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("attack.py");
    std::fs::write(&file, code).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_studentsim"))
        .args(["grade", "--problem", "sum-digits", "--json", "--memory-mib", &GUEST_MIB.to_string()])
        .arg(&file)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).unwrap();
        text
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live locals of the right types.
    let waited = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(waited, child.id() as i32, "wait4 failed");
    let exit = std::process::ExitStatus::from_raw(status);
    assert!(exit.success(), "grade failed on\n{code}\n({exit})");
    (usage.ru_maxrss as u64 / 1024, reader.join().unwrap())
}

#[test]
fn a_grade_costs_the_host_at_most_the_guest_cap_plus_a_fixed_margin() {
    let lift_caps = "import gc\nfor o in gc.get_objects():\n    if isinstance(o, dict) and 'cap' in o and 'groups' in o:\n        o['cap'] = 10**12\n";
    // A guest-sized text handed to the host again and again in every example: the host once copied each whole and
    // kept its allocation after cutting it (a 20-example problem peaked at 845 MiB under this 96 MiB guest).
    let hand_over = "import wit_world\ndef sum_digits(n):\n    big = 'T' * 30_000_000\n    for _ in range(10):\n        \
                     for slot in range(3):\n            wit_world.report_text(slot, big)\n    raise ValueError(big)\n";
    let attacks: [(&str, String, &str); 7] = [
        ("nothing", "def sum_digits(n):\n    return 0\n".into(), "logical"),
        (
            "a caps-lifting flood of prints",
            format!("{lift_caps}def sum_digits(n):\n    for _ in range(100):\n        print('x' * 1_000_000)\n"),
            "runtime",
        ),
        (
            "100 MB to the raw descriptor",
            "import os\ndef sum_digits(n):\n    for _ in range(100):\n        os.write(1, b'x' * 1_000_000)\n".into(),
            "runtime",
        ),
        (
            "a flood of stderr",
            "import os\ndef sum_digits(n):\n    for _ in range(100):\n        os.write(2, b'x' * 1_000_000)\n".into(),
            "runtime",
        ),
        (
            "memory up to the cap",
            "def sum_digits(n):\n    a = []\n    while True:\n        a.append(' ' * 10**6)\n".into(),
            "runtime",
        ),
        ("a 40 MB exception", "def sum_digits(n):\n    raise ValueError('x' * 40_000_000)\n".into(), "runtime"),
        ("guest-sized texts handed to the host", hand_over.into(), "runtime"),
    ];
    // The first grade under these limits may compile the component into the cache (once per machine, hundreds of
    // MiB): not a cost of grading.
    grade_peak_mib(&attacks[0].1);
    let bound = GUEST_MIB + HOST_MARGIN_MIB;
    let mut peaks = Vec::new();
    for (what, code, label) in &attacks {
        let (peak, stdout) = grade_peak_mib(code);
        let record: serde_json::Value =
            serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{what}: {e}: {stdout:.300}"));
        assert_eq!(record["label"], *label, "{what}: {record:.600}");
        assert!(stdout.len() < 32 << 10, "{what}: a record of {} bytes", stdout.len());
        assert!(peak <= bound, "{what}: the grade peaked at {peak} MiB, over the {bound} MiB bound");
        peaks.push(format!("{what}: {peak} MiB"));
    }
    eprintln!("peak host memory per grade (guest cap {GUEST_MIB} MiB): {}", peaks.join("; "));
}

#[test]
fn plain_output_cannot_forge_a_line_or_drive_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("attempt.py");
    let name = "E\\nother_student.py: no_error 4/4\\x1b[2K\\r\\x1b[1A";
    std::fs::write(&file, format!("def sum_digits(n):\n    raise type('{name}', (Exception,), {{}})()\n")).unwrap();
    let out = common::studentsim(&["grade", "--terse", "--problem", "sum-digits", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "one line per file: {stdout:?}");
    assert!(!stdout.trim_end().chars().any(|c| c.is_control()), "no control characters: {stdout:?}");
    assert!(stdout.contains(": runtime 0/4 (E\\nother_student.py: no_error 4/4\\u{1b}[2K\\r\\u{1b}[1A)"), "{stdout:?}");
    // With the report under it (which quotes the exception), still no control character, and every line but the
    // file's own is indented: nothing the submission raises can start a result line of its own.
    let out = common::studentsim(&["grade", "--problem", "sum-digits", file.to_str().unwrap()]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.lines().count() > 1, "{stdout:?}");
    for line in stdout.lines() {
        assert!(!line.chars().any(|c| c.is_control()), "no control characters: {line:?}");
    }
    assert_eq!(stdout.lines().filter(|l| !l.starts_with("    ")).count(), 1, "one unindented line: {stdout:?}");
    // an error that quotes what it was given stays one line too
    let out = common::studentsim(&["grade", "--problem", "zz\u{1b}[2K\nfake: no_error", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("error: unknown problem `zz\\u{1b}[2K\\nfake: no_error`"), "{stderr:?}");
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
}
