//! The Gradescope autograder end to end: `gradescope package` builds the zip, which is unpacked into a folder laid
//! out as Gradescope's `/autograder` (source, submission, results); its `setup.sh` and `run_autograder` run there
//! and `results.json` is checked against the autograder specification.

use crate::common;

use std::path::Path;
use std::process::Command;

/// Unpack `zip` into `dir`, keeping each file's Unix mode.
fn unpack(zip: &Path, dir: &Path) {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(zip).unwrap()).unwrap();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).unwrap();
        let path = dir.join(file.enclosed_name().expect("no path leaves the folder"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut out = std::fs::File::create(&path).unwrap();
        std::io::copy(&mut file, &mut out).unwrap();
        if let Some(mode) = file.unix_mode() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

/// Gradescope's rules for results.json: known top-level keys, every test named with a score within its
/// max_score and a known visibility, and a top-level score equal to the tests' sum.
fn check_against_the_specification(results: &serde_json::Value) {
    let allowed = [
        "score",
        "execution_time",
        "output",
        "output_format",
        "visibility",
        "stdout_visibility",
        "tests",
        "extra_data",
    ];
    for key in results.as_object().unwrap().keys() {
        assert!(allowed.contains(&key.as_str()), "unknown top-level key {key}");
    }
    let tests = results["tests"].as_array().unwrap();
    let mut sum = 0.0;
    for test in tests {
        assert!(test["name"].as_str().is_some_and(|n| !n.is_empty()), "{test}");
        let (score, max) = (test["score"].as_f64().unwrap(), test["max_score"].as_f64().unwrap());
        assert!((0.0..=max).contains(&score), "{test}");
        assert!(
            ["hidden", "after_due_date", "after_published", "visible"].contains(&test["visibility"].as_str().unwrap())
        );
        assert!(["passed", "failed"].contains(&test["status"].as_str().unwrap()));
        sum += score;
    }
    assert!((results["score"].as_f64().unwrap() - sum).abs() < 1e-9, "score is the tests' sum: {results}");
}

/// `gradescope package` of count-vowels from the registry `reg` into `zip`, with `extra` arguments.
fn package(reg: &str, zip: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["--problems", reg, "gradescope", "package", "-p", "count-vowels", "-o", zip.to_str().unwrap()];
    args.extend_from_slice(extra);
    common::studentsim(&args)
}

#[test]
fn the_autograder_zip_grades_a_submission_in_gradescopes_layout() {
    let registry = common::hidden_registry();
    let reg = registry.path().to_str().unwrap();
    let root = tempfile::tempdir().unwrap();
    let zip = root.path().join("autograder.zip");
    let out = package(reg, &zip, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let source = root.path().join("source");
    unpack(&zip, &source);
    std::fs::create_dir_all(root.path().join("submission")).unwrap();
    std::fs::write(root.path().join("submission/vowels.py"), common::HARD_CODED_VOWELS).unwrap();
    let run = |script: &Path| {
        let out = Command::new("bash").arg(script).env("AUTOGRADER_ROOT", root.path()).output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}{}",
            script.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&source.join("setup.sh"));
    // Gradescope copies run_autograder to /autograder and runs it from there
    std::fs::copy(source.join("run_autograder"), root.path().join("run_autograder")).unwrap();
    run(&root.path().join("run_autograder"));

    let text = std::fs::read_to_string(root.path().join("results/results.json")).unwrap();
    assert!(!text.contains(common::HIDDEN_MARKER), "results.json shows a hidden example: {text}");
    let results: serde_json::Value = serde_json::from_str(&text).unwrap();
    check_against_the_specification(&results);
    assert_eq!(results["score"], 2.0, "4 visible examples of 0.5 pass, the hidden ones fail: {text}");
    let tests = results["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 6);
    let hidden: Vec<_> = tests.iter().filter(|t| t["visibility"] == "after_published").collect();
    assert_eq!(hidden.len(), 2, "{text}");
    assert!(hidden.iter().all(|t| t["output"] == "fail" && t["max_score"] == 1.5), "{text}");
}

/// The zip ships a binary the image can run: one that needs a newer glibc than `--glibc`, or is no x86-64
/// executable, is refused with one line, and no zip is written.
#[test]
fn a_binary_the_image_cannot_run_is_refused() {
    let registry = common::hidden_registry();
    let reg = registry.path().to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("autograder.zip");
    let package = |extra: &[&str]| package(reg, &zip, extra);
    // every glibc build of x86-64 needs at least 2.2.5, so 2.0 refuses it whatever machine built it
    let out = package(&["--glibc", "2.0"]);
    common::bad_input(&out, &["studentsim: needs glibc 2.", "newer than the image's 2.0", "--binary"], Some(&zip));

    let script = dir.path().join("run.sh");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    let out = package(&["--binary", script.to_str().unwrap()]);
    common::bad_input(&out, &["run.sh: not a 64-bit ELF executable"], Some(&zip));

    let out = package(&["--glibc", "2.x"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`2.x` is not a glibc version"));

    let out = package(&[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("the image has 2.35"), "the default image is Ubuntu 22.04's glibc: {said}");
}
