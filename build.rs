//! Records the hash of the runtime's build inputs, computed as `runtimes/setup.sh` computes it, so the binary can
//! tell a current runtime folder from one an older set-up left in the user's cache.

use std::path::Path;

use sha2::Digest as _;

fn main() {
    let here = Path::new("runtimes");
    let mut files = vec![here.join("requirements.txt")];
    for (dir, ext) in [("wit", "wit"), ("harness", "py")] {
        let mut found: Vec<_> = std::fs::read_dir(here.join(dir))
            .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == ext)).collect())
            .unwrap_or_default();
        found.sort(); // the shell's glob order in the C locale: bytewise
        files.extend(found);
    }
    files.extend([here.join("fixed-random.c"), here.join("build-component.sh"), here.join("setup.sh")]);
    let mut bytes = Vec::new();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        match std::fs::read(file) {
            Ok(b) => bytes.extend(b),
            // A packaged crate without the set-up scripts: the binary then accepts any runtime.
            Err(_) => return,
        }
    }
    println!("cargo:rerun-if-changed=runtimes/wit");
    println!("cargo:rerun-if-changed=runtimes/harness");
    let digest = sha2::Sha256::digest(&bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    println!("cargo:rustc-env=STUDENTSIM_RUNTIME_INPUTS={hex}");
}
