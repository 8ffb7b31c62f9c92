//! Issue 13 part 1: every build of the grader component hashes strings the same way, so a program whose output
//! depends on the iteration order of a set of strings gets the same verdict whoever built the component. The
//! hash secret is drawn while componentize-py pre-initializes CPython; `runtimes/build-component.sh` gives that
//! step a fixed random source (`runtimes/fixed-random.c`).

use crate::common;

use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};
use studentsim::grade::{GradeLimits, Grader};
use studentsim::sandbox::Runtime;

const SET_ORDER_TODO: &str = "def order():\n    \"\"\"\n    >>> order()\n    'x'\n    \"\"\"\n";
const SET_ORDER_PROBE: &str = "def order():\n    return ' '.join({'apple', 'banana', 'cherry', 'damson', 'elder', 'fig', 'grape', 'hazel'}) + ' ' + str(hash('apple'))\n";
/// What the probe printed with the component built on the machine where this test was written (2026-12-03):
/// the same secret on another machine is what makes builds agree.
const PINNED: &str = "'apple damson elder banana grape hazel cherry fig -414849504'\n";

/// What the probe printed under `grader`'s component.
fn probe_output(grader: &Grader) -> String {
    let tests = common::block_on(grader.parse_tests(SET_ORDER_TODO)).expect("parse the probe's doctest");
    let record = common::block_on(grader.grade("", SET_ORDER_PROBE, &tests));
    record.examples.first().expect("the probe has one example").got.clone()
}

/// A second component, built now by the script `runtimes/setup.sh` builds with, in a runtime folder of its own.
fn build_second_component(dir: &Path) -> Runtime {
    std::fs::create_dir_all(dir).expect("the target's temp folder is writable");
    let wasm = dir.join("grader.wasm");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("runtimes/build-component.sh");
    let status = Command::new(&script).arg(&wasm).status().expect("run runtimes/build-component.sh");
    assert!(status.success(), "runtimes/build-component.sh failed: {status}");
    let bytes = std::fs::read(&wasm).expect("the second build wrote its component");
    let sha: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    let manifest = serde_json::json!({ "component": "grader.wasm", "sha256": sha });
    std::fs::write(dir.join("grader.json"), manifest.to_string()).expect("write the second manifest");
    Runtime::locate(Some(dir)).expect("the second build's runtime folder")
}

/// The component set-up built here against one built on another machine on another day (the pinned output): two
/// builds that agree. `STUDENTSIM_FULL_PARITY=1` also builds a third now (about 30 CPU-seconds: the build and its
/// compilation) and compares it with the first.
#[test]
fn two_builds_of_the_component_iterate_a_set_of_strings_in_the_same_order() {
    let first = probe_output(&common::grader());
    assert_eq!(first, PINNED, "this build's hash secret differs from the one pinned here (built elsewhere)");
    if !common::full_parity() {
        eprintln!("compared with the pinned build only (STUDENTSIM_FULL_PARITY=1 also builds one now)");
        return;
    }
    let second_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("second-component-build");
    let second =
        Grader::new(&build_second_component(&second_dir), GradeLimits::default()).expect("load the second build");
    let second = probe_output(&second);
    assert_eq!(
        first, second,
        "two builds of the component iterate a set of strings differently: their hash secrets differ"
    );
}
