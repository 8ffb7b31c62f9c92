//! `--shard K/N`: one process's deterministic share of a command's work, and the manifest beside its output that
//! lets `studentsim merge` check the shards belong together before it joins them.
//!
//! Trajectory work is shared by stream (every stream in the order of [`crate::trajectory::streams`], the j-th to
//! shard `j mod N`), so a stream is never split; submission batches without streams are shared by row. Every
//! shard still reads and checks the whole input, so a bad row fails every shard the same way, and student
//! context from other streams stays visible.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::BadInput;
use crate::{hex, sha256_hex};

/// Shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// The environment variables `auto/N` takes the index from: a Kubernetes Indexed Job's (0-based), then a Slurm
/// array task's (counted from the array's first id).
const K8S_INDEX: &str = "JOB_COMPLETION_INDEX";
const SLURM_INDEX: &str = "SLURM_ARRAY_TASK_ID";
const SLURM_MIN: &str = "SLURM_ARRAY_TASK_MIN";

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (index, count) =
            text.split_once('/').ok_or_else(|| format!("{text:?} is not K/N (e.g. 1/3, or auto/3)"))?;
        let count: u32 =
            count.parse().ok().filter(|&n| n >= 1).ok_or_else(|| format!("{count:?} is not a shard count ≥ 1"))?;
        let index = if index == "auto" {
            index_from_env(&|name| std::env::var(name).ok())?
        } else {
            index.parse().map_err(|_| format!("{index:?} is not a shard number (1 to {count}, or auto)"))?
        };
        if !(1..=count).contains(&index) {
            return Err(format!("shard {index} of {count}: shards are numbered 1 to {count}"));
        }
        Ok(Self { index, count })
    }
}

/// The 1-based shard index a cluster scheduler gave this process.
fn index_from_env(var: &dyn Fn(&str) -> Option<String>) -> Result<u32, String> {
    let number = |name: &str, value: String| {
        value.trim().parse::<u32>().map_err(|_| format!("${name}={value:?} is not a number"))
    };
    if let Some(value) = var(K8S_INDEX) {
        return Ok(number(K8S_INDEX, value)? + 1);
    }
    if let Some(value) = var(SLURM_INDEX) {
        let id = number(SLURM_INDEX, value)?;
        let min = var(SLURM_MIN).map(|v| number(SLURM_MIN, v)).transpose()?.unwrap_or(0);
        return id
            .checked_sub(min)
            .map(|i| i + 1)
            .ok_or_else(|| format!("${SLURM_INDEX}={id} is below ${SLURM_MIN}={min}"));
    }
    Err(format!("auto: neither ${K8S_INDEX} (a Kubernetes Indexed Job) nor ${SLURM_INDEX} (a Slurm array job) is set"))
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Whether the `n`-th unit of work (row or stream, 0-based) is this shard's.
    pub fn owns(&self, n: usize) -> bool {
        n % self.count as usize == (self.index - 1) as usize
    }
}

/// Which command wrote a shard; merge joins each kind its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Rows of `grade --input`, one per input row: joined by input position.
    Grade,
    /// Rows of `metrics`, one per input row: joined by input position.
    Metrics,
    /// Rollout rows, sorted by (student, problem, attempt): joined by that key.
    Rollout,
    /// `score`'s grades and embeddings: joined, then scored into the report.
    Score,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Grade => "grade",
            Kind::Metrics => "metrics",
            Kind::Rollout => "rollout",
            Kind::Score => "score",
        }
    }
}

/// What `<output>.shard.json` says about a finished shard.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// The format of this file.
    pub studentsim_shard: u32,
    pub kind: Kind,
    pub shard: Shard,
    /// sha256 of the input file(s) every shard read in full.
    pub input_sha256: String,
    /// sha256 of every setting that changes the output (all arguments but --shard, the output and --jobs), and
    /// of studentsim's version: shards of different runs are refused.
    pub settings_sha256: String,
    /// sha256 of the shard's output as it was when the shard finished.
    pub output_sha256: String,
    /// For grade and metrics: the input position (0-based, among the rows) of each output line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub positions: Vec<usize>,
    /// For grade and metrics: how many rows the input has.
    #[serde(default)]
    pub input_rows: usize,
    /// For score: the settings the report is made with (score's `ScoreSettings`, as JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<serde_json::Value>,
}

/// 2: settings hashed as JSON, and score's stored as JSON rather than as a command line.
pub const FORMAT: u32 = 2;

/// The manifest's path beside `output`.
pub fn manifest_path(output: &Path) -> PathBuf {
    beside(output, ".shard.json")
}

/// A file beside `output` named after it: `out.jsonl` and `.run.json` give `out.jsonl.run.json`.
pub(super) fn beside(output: &Path, suffix: &str) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    output.with_file_name(name)
}

/// sha256 of the files every shard reads in full, in order.
pub fn inputs_sha256(paths: &[&Path]) -> Result<String, BadInput> {
    let mut hasher = Sha256::new();
    for path in paths {
        let bytes = std::fs::read(path).map_err(|e| BadInput(format!("{}: cannot read: {e}", path.display())))?;
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    Ok(hex(&hasher.finalize()))
}

/// The settings hash of what changes a command's output (the caller picks it: never --shard, the output or
/// --jobs): its JSON, after studentsim's version.
pub(super) fn settings_sha256(settings: &impl Serialize) -> Result<String, BadInput> {
    let json = serde_json::to_string(settings)
        .map_err(|e| BadInput(format!("the settings cannot be written into a shard manifest: {e}")))?;
    Ok(sha256_hex(format!("studentsim {} {json}", env!("CARGO_PKG_VERSION")).as_bytes()))
}

/// Write `output` from what `fill` writes, atomically; for a shard, then its manifest (with the output's sha256),
/// atomically too. The manifest comes last: a manifest means a shard finished, and says what it wrote.
pub fn write_output(
    output: &Path,
    shard: Option<Manifest>,
    fill: impl FnOnce(&mut dyn std::io::Write) -> Result<()>,
) -> Result<()> {
    let mut hasher = Sha256::new();
    crate::jsonl::write_atomically(output, |out| fill(&mut Hashing { inner: out, hasher: &mut hasher }))?;
    let Some(manifest) = shard else { return Ok(()) };
    let manifest = Manifest { output_sha256: hex(&hasher.finalize()), ..manifest };
    let mut text = serde_json::to_vec(&manifest)?;
    text.push(b'\n');
    crate::jsonl::write_atomically(&manifest_path(output), |out| Ok(out.write_all(&text)?))
}

/// A writer that hashes what goes through it.
struct Hashing<'a> {
    inner: &'a mut dyn std::io::Write,
    hasher: &'a mut Sha256,
}

impl std::io::Write for Hashing<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The (student, problem) streams of `rows` that are `shard`'s.
pub fn owned_streams(
    rows: &[crate::trajectory::Submission],
    shard: Shard,
) -> std::collections::BTreeSet<(String, String)> {
    crate::trajectory::streams(rows)
        .into_keys()
        .enumerate()
        .filter(|&(j, _)| shard.owns(j))
        .map(|(_, (student, problem))| (student.to_owned(), problem.to_owned()))
        .collect()
}

/// The `--shard` option of every command that can share its work.
#[derive(Debug, Default, clap::Args)]
pub struct ShardArgs {
    /// Do only shard K of N of the work (K from 1; `auto/N` takes K from $JOB_COMPLETION_INDEX or
    /// $SLURM_ARRAY_TASK_ID) and write a manifest `<output>.shard.json` beside the output. `studentsim merge`
    /// joins the N outputs into what one unsharded run writes.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
}

impl ShardArgs {
    /// The start of this shard's manifest, for a command whose output follows from `settings` and `inputs`.
    pub fn manifest(
        &self,
        kind: Kind,
        inputs: &[&Path],
        settings: &impl Serialize,
    ) -> Result<Option<Manifest>, BadInput> {
        let Some(shard) = self.shard else { return Ok(None) };
        if let Some(stdin) = inputs.iter().find(|p| crate::jsonl::is_stdio(p)) {
            return Err(BadInput(format!(
                "--shard reads its input files by name (every shard hashes them); `{}` is standard input",
                stdin.display()
            )));
        }
        Ok(Some(Manifest {
            studentsim_shard: FORMAT,
            kind,
            shard,
            input_sha256: inputs_sha256(inputs)?,
            settings_sha256: settings_sha256(settings)?,
            output_sha256: String::new(),
            positions: Vec::new(),
            input_rows: 0,
            score: None,
        }))
    }
}

/// A shard output and what its manifest says.
pub struct ShardFile {
    pub path: PathBuf,
    pub manifest: Manifest,
    pub bytes: Vec<u8>,
}

/// Read every shard and its manifest, and check they are the N shards of one run, each once.
pub fn read_shards(paths: &[PathBuf]) -> Result<Vec<ShardFile>, BadInput> {
    let mut by_index: BTreeMap<u32, ShardFile> = BTreeMap::new();
    for path in paths {
        let file = read_shard(path)?;
        if let Some(first) = by_index.values().next() {
            let (a, b) = (&first.manifest, &file.manifest);
            let differs = if a.kind != b.kind {
                Some(format!("a {} shard, not {}", b.kind.as_str(), a.kind.as_str()))
            } else if a.shard.count != b.shard.count {
                Some(format!("one of {} shards, not {}", b.shard.count, a.shard.count))
            } else if a.input_sha256 != b.input_sha256 {
                Some("made from another input".to_owned())
            } else if a.settings_sha256 != b.settings_sha256 {
                Some("made with other settings (arguments or studentsim version)".to_owned())
            } else {
                None
            };
            if let Some(why) = differs {
                return Err(BadInput(format!(
                    "{}: not a shard of the same run as {}: {why}",
                    path.display(),
                    first.path.display()
                )));
            }
        }
        if let Some(other) = by_index.get(&file.manifest.shard.index) {
            return Err(BadInput(format!(
                "{}: shard {} again (also {})",
                path.display(),
                file.manifest.shard,
                other.path.display()
            )));
        }
        by_index.insert(file.manifest.shard.index, file);
    }
    let count = by_index.values().next().expect("clap requires a shard").manifest.shard.count;
    let missing: Vec<String> =
        (1..=count).filter(|k| !by_index.contains_key(k)).map(|k| format!("{k}/{count}")).collect();
    if !missing.is_empty() {
        return Err(BadInput(format!("shard {} missing (got {} of {count})", missing.join(", "), by_index.len())));
    }
    Ok(by_index.into_values().collect())
}

fn read_shard(path: &Path) -> Result<ShardFile, BadInput> {
    let manifest_path = manifest_path(path);
    let text = std::fs::read_to_string(&manifest_path).map_err(|e| {
        BadInput(format!(
            "{}: no shard manifest {} ({e}): not a --shard output, or its run has not finished",
            path.display(),
            manifest_path.display()
        ))
    })?;
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|e| BadInput(format!("{}:{}: not a shard manifest: {e}", manifest_path.display(), e.line())))?;
    if manifest.studentsim_shard != FORMAT {
        return Err(BadInput(format!(
            "{}: shard format {}, this studentsim reads {}",
            manifest_path.display(),
            manifest.studentsim_shard,
            FORMAT
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| BadInput(format!("{}: cannot read: {e}", path.display())))?;
    if sha256_hex(&bytes) != manifest.output_sha256 {
        return Err(BadInput(format!(
            "{}: changed since its shard finished (sha256 differs from {})",
            path.display(),
            manifest_path.display()
        )));
    }
    Ok(ShardFile { path: path.to_owned(), manifest, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn shard_numbers_are_one_based_and_checked() {
        assert_eq!("2/3".parse(), Ok(Shard { index: 2, count: 3 }));
        assert!("0/3".parse::<Shard>().unwrap_err().contains("numbered 1 to 3"));
        assert!("4/3".parse::<Shard>().is_err());
        assert!("1/0".parse::<Shard>().is_err());
        assert!("3".parse::<Shard>().unwrap_err().contains("K/N"));
    }

    #[test]
    fn auto_takes_the_index_from_kubernetes_then_slurm() {
        assert_eq!(index_from_env(&env(&[("JOB_COMPLETION_INDEX", "0"), ("SLURM_ARRAY_TASK_ID", "7")])), Ok(1));
        assert_eq!(index_from_env(&env(&[("SLURM_ARRAY_TASK_ID", "2")])), Ok(3));
        // an array submitted as --array=1-3
        assert_eq!(index_from_env(&env(&[("SLURM_ARRAY_TASK_ID", "1"), ("SLURM_ARRAY_TASK_MIN", "1")])), Ok(1));
        assert!(index_from_env(&env(&[])).unwrap_err().contains("neither"));
        assert!(index_from_env(&env(&[("JOB_COMPLETION_INDEX", "x")])).unwrap_err().contains("not a number"));
    }

    #[test]
    fn every_unit_has_exactly_one_shard() {
        let shards: Vec<Shard> = (1..=3).map(|index| Shard { index, count: 3 }).collect();
        for n in 0..10 {
            assert_eq!(shards.iter().filter(|s| s.owns(n)).count(), 1, "unit {n}");
        }
        assert!(shards[0].owns(0) && shards[1].owns(1) && shards[2].owns(5));
    }
}
