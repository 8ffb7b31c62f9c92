//! Issue 15 part 4: a copied binary in an empty folder finds its runtime in the user's cache folder
//! ($XDG_CACHE_HOME/studentsim, where `runtimes/setup.sh --prefix` puts one); a stale runtime there (built from
//! other set-up inputs) never shadows a current one; --runtime and $STUDENTSIM_RUNTIME_DIR win over both.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CORRECT: &str = "def sum_digits(n):\n    return sum(int(d) for d in str(n))\n";

/// A runtime folder holding only the component and its manifest, with the manifest's `inputs` replaced when
/// `inputs` is given.
fn runtime_copy(to: &Path, inputs: Option<&str>) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("runtimes/.cache");
    std::fs::create_dir_all(to).unwrap();
    std::fs::copy(source.join("grader.wasm"), to.join("grader.wasm")).expect("run runtimes/setup.sh first");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(source.join("grader.json")).unwrap()).unwrap();
    if let Some(inputs) = inputs {
        manifest["inputs"] = inputs.into();
    }
    std::fs::write(to.join("grader.json"), manifest.to_string()).unwrap();
}

/// An empty folder with a copied binary, one problem and one attempt.
fn installed(root: &Path) -> (PathBuf, PathBuf) {
    let bin = root.join("bin/studentsim");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_studentsim"), &bin).unwrap();
    let work = root.join("work");
    std::fs::create_dir_all(work.join("problems/sum-digits")).unwrap();
    let toml = Path::new(env!("CARGO_MANIFEST_DIR")).join("problems/sum-digits/problem.toml");
    std::fs::copy(toml, work.join("problems/sum-digits/problem.toml")).unwrap();
    std::fs::write(work.join("attempt.py"), CORRECT).unwrap();
    (bin, work)
}

fn grade(bin: &Path, work: &Path, xdg: &Path, env_dir: Option<&Path>, extra: &[&str]) -> Output {
    let mut command = Command::new(bin);
    command
        .args(extra)
        .args(["grade", "--problem", "sum-digits", "attempt.py"])
        .current_dir(work)
        .env("XDG_CACHE_HOME", xdg);
    match env_dir {
        Some(dir) => command.env("STUDENTSIM_RUNTIME_DIR", dir),
        None => command.env_remove("STUDENTSIM_RUNTIME_DIR"),
    };
    command.output().unwrap()
}

fn passed(out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("no_error 4/4"),
        "stdout {stdout:?}, stderr {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_copied_binary_finds_the_runtime_in_the_user_cache() {
    let root = tempfile::tempdir().unwrap();
    let (bin, work) = installed(root.path());
    let xdg = root.path().join("xdg");
    let user_runtime = xdg.join("studentsim");
    runtime_copy(&user_runtime, None);
    passed(&grade(&bin, &work, &xdg, None, &[]));
    // studentsim compiles the component into the folder it used
    assert!(user_runtime.join("compiled").is_dir(), "the user cache's runtime was not the one used");
}

#[test]
fn a_stale_runtime_in_the_user_cache_does_not_shadow_the_source_tree() {
    let root = tempfile::tempdir().unwrap();
    let (bin, work) = installed(root.path());
    let xdg = root.path().join("xdg");
    let stale = xdg.join("studentsim");
    runtime_copy(&stale, Some("0000000000000000000000000000000000000000000000000000000000000000"));
    passed(&grade(&bin, &work, &xdg, None, &[]));
    assert!(!stale.join("compiled").exists(), "the stale runtime was used");
    // named explicitly, a folder is taken as it is
    passed(&grade(&bin, &work, &xdg, None, &["--runtime", stale.to_str().unwrap()]));
    assert!(stale.join("compiled").is_dir(), "--runtime was not used");
}

#[test]
fn the_environment_variable_names_the_runtime_and_a_wrong_one_is_one_clear_line() {
    let root = tempfile::tempdir().unwrap();
    let (bin, work) = installed(root.path());
    let xdg = root.path().join("xdg");
    let chosen = root.path().join("chosen");
    runtime_copy(&chosen, None);
    passed(&grade(&bin, &work, &xdg, Some(&chosen), &[]));
    assert!(chosen.join("compiled").is_dir());
    let nowhere = root.path().join("nowhere");
    let out = grade(&bin, &work, &xdg, Some(&nowhere), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(nowhere.to_str().unwrap()) && err.contains("runtimes/setup.sh"), "{err}");
}

/// A runtime folder without the compiled component takes the one the source tree's folder compiled (same
/// component, same engine) instead of compiling it again: seen here with a copy whose component file is not a
/// component at all, which a compile would refuse.
#[test]
fn a_runtime_copy_reuses_the_compiled_component_of_the_source_tree() {
    crate::common::grader(); // the source tree's runtime, compiled
    let root = tempfile::tempdir().unwrap();
    let (bin, work) = installed(root.path());
    let xdg = root.path().join("xdg");
    let chosen = root.path().join("chosen");
    runtime_copy(&chosen, None);
    std::fs::write(chosen.join("grader.wasm"), "not a component").unwrap();
    passed(&grade(&bin, &work, &xdg, Some(&chosen), &[]));
    let compiled: Vec<_> =
        std::fs::read_dir(chosen.join("compiled")).unwrap().map(|e| e.unwrap().file_name()).collect();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("runtimes/.cache/compiled");
    assert!(
        !compiled.is_empty() && compiled.iter().all(|name| source.join(name).is_file()),
        "{compiled:?} are not the source tree's"
    );
}
