//! Finding the grader component that `runtimes/setup.sh` built, and caching its compiled form.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;
use wasmtime::Engine;
use wasmtime::component::Component;

/// The command that fetches and builds the runtime; named in every "runtime missing" error.
pub const SETUP_COMMAND: &str = "runtimes/setup.sh";

/// Environment variable that points at a runtime directory other than the default.
pub const RUNTIME_DIR_ENV: &str = "STUDENTSIM_RUNTIME_DIR";

/// A built grader component: `runtimes/.cache/` unless told otherwise.
#[derive(Debug, Clone)]
pub struct Runtime {
    dir: PathBuf,
    manifest: Manifest,
}

/// `grader.json`, written by the set-up script next to the component.
#[derive(Debug, Clone, Deserialize)]
struct Manifest {
    /// File name of the component, relative to the runtime directory.
    component: String,
    /// sha256 of the component file.
    sha256: String,
    /// The hash of the set-up's inputs it was built from (absent from hand-made folders).
    #[serde(default)]
    inputs: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("grader runtime not found in {dir} ({why}); run `{SETUP_COMMAND}` to fetch and build it")]
pub struct RuntimeMissing {
    pub dir: PathBuf,
    pub why: String,
}

impl Runtime {
    /// The default runtime folder: `$STUDENTSIM_RUNTIME_DIR`, else the first of [`Runtime::search_dirs`] that holds
    /// a current runtime, else the source tree's (where `runtimes/setup.sh` builds by default).
    pub fn default_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os(RUNTIME_DIR_ENV) {
            return PathBuf::from(dir);
        }
        Self::search_dirs().into_iter().find(|dir| Self::current(dir).is_ok()).unwrap_or_else(source_tree_dir)
    }

    /// Where a runtime is looked for when neither `--runtime` nor `$STUDENTSIM_RUNTIME_DIR` names one, in order:
    /// the user's cache folder (`$XDG_CACHE_HOME/studentsim`, else `~/.cache/studentsim`), where
    /// `runtimes/setup.sh --prefix` installs one for a copied or `cargo install`ed binary; then the source tree
    /// this binary was built from.
    pub fn search_dirs() -> Vec<PathBuf> {
        let user_cache = directories::ProjectDirs::from("", "", "studentsim").map(|p| p.cache_dir().to_path_buf());
        user_cache.into_iter().chain([source_tree_dir()]).collect()
    }

    /// The runtime in `dir`, or in the default folders when `dir` is `None`. A runtime found by searching must
    /// be built from this binary's set-up inputs, so that a stale one in the user's cache never shadows the
    /// source tree's; one named (`--runtime`, `$STUDENTSIM_RUNTIME_DIR`) is taken as it is.
    pub fn locate(dir: Option<&Path>) -> Result<Self, RuntimeMissing> {
        if let Some(dir) = dir.map(Path::to_path_buf).or_else(|| std::env::var_os(RUNTIME_DIR_ENV).map(PathBuf::from)) {
            return Self::open(&dir);
        }
        let mut whys = Vec::new();
        for dir in Self::search_dirs() {
            match Self::current(&dir) {
                Ok(runtime) => return Ok(runtime),
                Err(missing) => whys.push(format!("{}: {}", dir.display(), missing.why)),
            }
        }
        Err(RuntimeMissing { dir: source_tree_dir(), why: format!("looked in {}", whys.join("; ")) })
    }

    /// The runtime in `dir` if it was built from this binary's set-up inputs.
    fn current(dir: &Path) -> Result<Self, RuntimeMissing> {
        let runtime = Self::open(dir)?;
        match (option_env!("STUDENTSIM_RUNTIME_INPUTS"), runtime.manifest.inputs.as_deref()) {
            (Some(wanted), Some(found)) if wanted != found => Err(RuntimeMissing {
                dir: dir.to_owned(),
                why: format!(
                    "built by another version of the set-up (inputs {}…, this studentsim wants {}…)",
                    &found[..found.len().min(12)],
                    &wanted[..12]
                ),
            }),
            _ => Ok(runtime),
        }
    }

    fn open(dir: &Path) -> Result<Self, RuntimeMissing> {
        let dir = dir.to_path_buf();
        let missing = |why: String| RuntimeMissing { dir: dir.clone(), why };
        let manifest_path = dir.join("grader.json");
        let text = std::fs::read_to_string(&manifest_path)
            .map_err(|e| missing(format!("{}: {e}", manifest_path.display())))?;
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|e| missing(format!("{}: {e}", manifest_path.display())))?;
        if !dir.join(&manifest.component).is_file() {
            return Err(missing(format!("{} is missing", manifest.component)));
        }
        Ok(Self { dir, manifest })
    }

    pub fn component_path(&self) -> PathBuf {
        self.dir.join(&self.manifest.component)
    }

    /// What a copy of this runtime needs, as (name in the folder, path here): `grader.json` and the component.
    pub fn files(&self) -> [(String, PathBuf); 2] {
        [("grader.json".into(), self.dir.join("grader.json")), (self.manifest.component.clone(), self.component_path())]
    }

    /// Load the component compiled for `engine`, compiling (seconds) only when no cached copy matches.
    ///
    /// The cache key covers the wasmtime version and the engine settings that change generated code (wasmtime's
    /// own compatibility hash) and the component's sha256. A runtime folder without it takes a copy from the
    /// other folders of [`Runtime::search_dirs`] when one has it (the same component copied elsewhere, e.g. by
    /// `runtimes/setup.sh --prefix`), else compiles. One process compiles at a time: processes that start
    /// together (shards, tests) wait for the first one's compile and load what it wrote (a compile takes every
    /// core for seconds). Where the folder cannot hold a lock file each compiles on its own; two writing at once
    /// each write a temp file and rename it into place.
    pub fn load(&self, engine: &Engine) -> Result<Component> {
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let key = crate::sha256_hex(format!("{:016x}\n{}", hasher.finish(), self.manifest.sha256).as_bytes());
        let cached = self.dir.join("compiled").join(format!("{key}.cwasm"));
        if let Some(component) = self.load_compiled(engine, &cached)? {
            return Ok(component);
        }
        let _compiling = lock(&cached.with_extension("lock"));
        if let Some(component) = self.load_compiled(engine, &cached)? {
            return Ok(component);
        }
        let wasm = std::fs::read(self.component_path())
            .with_context(|| format!("reading {}", self.component_path().display()))?;
        let compiled = engine
            .precompile_component(&wasm)
            .map_err(anyhow::Error::from)
            .context("compiling the grader component")?;
        crate::jsonl::write_atomically(&cached, |out| Ok(out.write_all(&compiled)?))?;
        // SAFETY: produced just above by this engine.
        Ok(unsafe { Component::deserialize(engine, &compiled) }?)
    }

    /// The component compiled into `cached`, or into the same name in another folder of the search (copied here).
    fn load_compiled(&self, engine: &Engine, cached: &Path) -> Result<Option<Component>> {
        let name = cached.file_name().expect("a file name");
        let elsewhere = Self::search_dirs().into_iter().map(|dir| dir.join("compiled").join(name));
        for found in std::iter::once(cached.to_path_buf()).chain(elsewhere).filter(|path| path.is_file()) {
            if found != cached {
                // Gone or unreadable since it was listed: the next one, or a compile.
                let Ok(bytes) = std::fs::read(&found) else { continue };
                crate::jsonl::write_atomically(cached, |out| Ok(out.write_all(&bytes)?))?;
            }
            // SAFETY: the file was written by `Engine::precompile_component` of this same wasmtime build (the key
            // includes the version and settings), into a runtime folder only this tool writes.
            // An error means stale or truncated by hand: fall through and rebuild it.
            if let Ok(component) = unsafe { Component::deserialize_file(engine, cached) } {
                return Ok(Some(component));
            }
        }
        Ok(None)
    }
}

/// An exclusive lock on `path` (created if need be), held until the file is dropped; `None` where the folder is
/// read-only or the file system has no locks.
fn lock(path: &Path) -> Option<std::fs::File> {
    std::fs::create_dir_all(path.parent()?).ok()?;
    let file = std::fs::File::options().create(true).truncate(false).write(true).open(path).ok()?;
    file.lock().ok()?;
    Some(file)
}

/// `runtimes/.cache` of the source tree this binary was built from.
fn source_tree_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("runtimes/.cache")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_second_compile_waits_for_the_first_to_let_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("compiled/key.lock");
        let first = lock(&path).expect("a lock in a temp folder");
        let released = AtomicBool::new(false);
        std::thread::scope(|s| {
            let second = s.spawn(|| {
                let _second = lock(&path).expect("the lock once the first lets go");
                released.load(Ordering::SeqCst)
            });
            std::thread::sleep(Duration::from_millis(200));
            released.store(true, Ordering::SeqCst);
            drop(first);
            assert!(second.join().unwrap(), "the second lock was taken while the first was held");
        });
    }
}
