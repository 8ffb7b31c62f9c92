//! A persistent embedding cache: one append-only file per model id, each record the sha256 of a program's text
//! followed by its vector (little-endian f32). A record cut short by a crash is ignored on the next open.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// The cache key of a text.
pub fn key(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

pub struct EmbeddingCache {
    path: PathBuf,
    dim: Option<usize>,
    vectors: HashMap<[u8; 32], Vec<f32>>,
    /// Records written since the last flush.
    pending: Vec<([u8; 32], Vec<f32>)>,
}

impl EmbeddingCache {
    /// Open (or start) the cache of model `model_id` in `dir`. Every vector of one model has the same length;
    /// the first record fixes it.
    pub fn open(dir: &Path, model_id: &str) -> Result<Self> {
        let path = dir.join(format!("{model_id}.vectors"));
        let mut cache = Self { path, dim: None, vectors: HashMap::new(), pending: Vec::new() };
        let mut bytes = Vec::new();
        match File::open(&cache.path) {
            Ok(mut file) => {
                file.read_to_end(&mut bytes).with_context(|| format!("reading {}", cache.path.display()))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(cache),
            Err(e) => return Err(e).with_context(|| format!("opening {}", cache.path.display())),
        }
        // Header: the vector length as u32.
        let Some((dim, mut rest)) = bytes.split_first_chunk::<4>().map(|(d, r)| (u32::from_le_bytes(*d) as usize, r))
        else {
            return Ok(cache);
        };
        cache.dim = Some(dim);
        let record = 32 + 4 * dim;
        while rest.len() >= record {
            let (key, vector) = rest[..record].split_at(32);
            let vector = vector.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
            cache.vectors.insert(key.try_into().expect("32 bytes"), vector);
            rest = &rest[record..];
        }
        if !rest.is_empty() {
            // Cut the torn record off, so that the next append starts on a record boundary.
            let whole = (bytes.len() - rest.len()) as u64;
            OpenOptions::new()
                .write(true)
                .open(&cache.path)
                .and_then(|f| f.set_len(whole))
                .with_context(|| format!("repairing {}", cache.path.display()))?;
        }
        Ok(cache)
    }

    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    pub fn get(&self, key: &[u8; 32]) -> Option<&[f32]> {
        self.vectors.get(key).map(Vec::as_slice)
    }

    pub fn insert(&mut self, key: [u8; 32], vector: Vec<f32>) -> Result<()> {
        match self.dim {
            Some(dim) if dim != vector.len() => {
                anyhow::bail!("{}: vectors of length {dim}, got one of {}", self.path.display(), vector.len())
            }
            _ => self.dim = Some(vector.len()),
        }
        self.pending.push((key, vector.clone()));
        self.vectors.insert(key, vector);
        Ok(())
    }

    /// Append the records inserted since the last flush.
    pub fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let dim = self.dim.expect("a record fixed the length");
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        let fresh = file.metadata()?.len() == 0;
        let mut out = BufWriter::new(file);
        if fresh {
            out.write_all(&(dim as u32).to_le_bytes())?;
        }
        for (key, vector) in self.pending.drain(..) {
            out.write_all(&key)?;
            for x in vector {
                out.write_all(&x.to_le_bytes())?;
            }
        }
        out.flush().with_context(|| format!("writing {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopening_and_a_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = EmbeddingCache::open(dir.path(), "m").unwrap();
        cache.insert(key("a"), vec![1.0, 2.0]).unwrap();
        cache.insert(key("b"), vec![3.0, 4.0]).unwrap();
        cache.flush().unwrap();
        assert!(cache.insert(key("c"), vec![1.0]).is_err(), "wrong length");
        let path = dir.path().join("m.vectors");
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[7; 20]).unwrap(); // a record cut short
        let mut again = EmbeddingCache::open(dir.path(), "m").unwrap();
        assert_eq!((again.len(), again.get(&key("b"))), (2, Some(&[3.0f32, 4.0][..])));
        again.insert(key("d"), vec![5.0, 6.0]).unwrap();
        again.flush().unwrap();
        assert_eq!(EmbeddingCache::open(dir.path(), "m").unwrap().get(&key("d")), Some(&[5.0f32, 6.0][..]));
        assert!(EmbeddingCache::open(dir.path(), "other").unwrap().is_empty());
    }
}
