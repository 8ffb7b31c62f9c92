//! JSON Lines in and out: every input error names the file and line; every output file appears atomically.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::BadInput;

/// The path that means standard input (for an input) or standard output (for an output).
pub const STDIO: &str = "-";

/// Whether `path` is `-`: standard input or output.
pub fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == STDIO
}

/// The bytes of `path`, or of standard input for `-`; an error names the path.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, BadInput> {
    read_raw(path).map_err(|e| BadInput(format!("{}: cannot read: {e}", shown(path))))
}

/// [`read_bytes`] with the bare I/O error, for a caller that names the path its own way.
pub fn read_raw(path: &Path) -> std::io::Result<Vec<u8>> {
    if is_stdio(path) {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut bytes)?;
        Ok(bytes)
    } else {
        std::fs::read(path)
    }
}

/// How errors name `path`: `<stdin>` for `-`.
pub fn shown(path: &Path) -> String {
    if is_stdio(path) { "<stdin>".into() } else { path.display().to_string() }
}

/// The rows of `path` (`-`: standard input) with their 1-based line numbers; blank lines are skipped.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<Vec<(usize, T)>, BadInput> {
    let bytes = read_bytes(path)?;
    let name = shown(path);
    let mut rows = Vec::new();
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let at = |what: String| BadInput(format!("{name}:{}: {what}", index + 1));
        let line = std::str::from_utf8(line).map_err(|e| at(format!("not valid UTF-8 (byte {})", e.valid_up_to())))?;
        if line.trim().is_empty() {
            continue;
        }
        // serde_path_to_error names the field a type error is in (`attempt: invalid type: ...`).
        let mut de = serde_json::Deserializer::from_str(line);
        let row = serde_path_to_error::deserialize(&mut de).map_err(|e| at(format!("malformed row: {e}")))?;
        de.end().map_err(|e| at(format!("malformed row: {e}")))?;
        rows.push((index + 1, row));
    }
    Ok(rows)
}

/// Write `rows` to `path`, one JSON object per line, all or nothing.
pub fn write<T: Serialize>(path: &Path, rows: impl IntoIterator<Item = T>) -> Result<()> {
    write_atomically(path, |out| write_rows(out, rows))
}

/// Write `rows` to `out`, one JSON object per line.
pub fn write_rows<T: Serialize>(out: &mut dyn Write, rows: impl IntoIterator<Item = T>) -> Result<()> {
    for row in rows {
        serde_json::to_writer(&mut *out, &row)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Create `path` from what `fill` writes, all or nothing (temp file in the same folder, then rename).
///
/// The temp file is `.<name>.<pid>.<random>.tmp`; one left by a writer that was killed (`kill -9`, a power
/// cut) is removed by the next write of the same file once its process is gone, so a killed run leaves no
/// partial file behind for long.
pub fn write_atomically(path: &Path, fill: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    if is_stdio(path) {
        // `-`: standard output, as it is written (a pipe has no temp file to rename).
        let mut out = BufWriter::new(std::io::stdout().lock());
        fill(&mut out)?;
        return Ok(out.flush()?);
    }
    Staged::new(path.to_path_buf(), fill)?.commit()
}

/// Write several files so that a kill leaves either none of the new ones or (but for the few microseconds of
/// the renames) all of them: every file is written to its temp file first, then all are renamed into place.
pub fn write_all_atomically<'b>(files: impl IntoIterator<Item = (PathBuf, &'b [u8])>) -> Result<()> {
    let staged: Vec<Staged> = files
        .into_iter()
        .map(|(path, bytes)| Staged::new(path, |out| Ok(out.write_all(bytes)?)))
        .collect::<Result<_>>()?;
    staged.into_iter().try_for_each(Staged::commit)
}

/// A file written in full to its temp file and synced, waiting to be renamed to its path.
struct Staged {
    path: PathBuf,
    tmp: tempfile::NamedTempFile,
}

impl Staged {
    fn new(path: PathBuf, fill: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<Self> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let name = path.file_name().map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
        remove_orphaned_temps(dir, &name);
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}.{}.", std::process::id()))
            .suffix(".tmp")
            .tempfile_in(dir)
            .with_context(|| format!("creating a temp file in {}", dir.display()))?;
        let mut out = BufWriter::new(tmp);
        fill(&mut out)?;
        let tmp = out.into_inner().map_err(|e| e.into_error())?;
        let mut perms = tmp.as_file().metadata()?.permissions();
        // Temp files are created private (0600); the output is an ordinary file.
        #[cfg(unix)]
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
        tmp.as_file().set_permissions(perms)?;
        tmp.as_file().sync_all()?;
        Ok(Self { path, tmp })
    }

    fn commit(self) -> Result<()> {
        self.tmp
            .persist(&self.path)
            .map_err(|e| e.error)
            .with_context(|| format!("writing {}", self.path.display()))?;
        Ok(())
    }
}

/// Remove the temp files of earlier writes of `name` in `dir` whose writing process no longer runs.
fn remove_orphaned_temps(dir: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(&prefix)).and_then(|r| r.strip_suffix(".tmp"))
        else {
            continue;
        };
        let Some(pid) = rest.split('.').next().and_then(|p| p.parse::<i32>().ok()) else { continue };
        if process_is_gone(pid) {
            let _ = std::fs::remove_file(entry.path()); // another writer may have removed it first
        }
    }
}

#[cfg(unix)]
fn process_is_gone(pid: i32) -> bool {
    // SAFETY: signal 0 sends nothing; it only asks whether the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    !alive && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

#[cfg(not(unix))]
fn process_is_gone(_pid: i32) -> bool {
    false
}
