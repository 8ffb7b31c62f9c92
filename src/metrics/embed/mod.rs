//! Code embeddings for the semantic metrics: the [`Embedder`] trait, the default BERT-family model run with
//! candle ([`BertEmbedder`]), and a persistent cache of vectors keyed by the sha256 of the code.

mod bert;
mod cache;

pub use bert::BertEmbedder;
pub use cache::EmbeddingCache;

use std::path::PathBuf;

use anyhow::Result;

/// Turns programs into unit-length vectors. Implementations are deterministic: the same text always gets the
/// same vector, which is what makes the cache sound.
pub trait Embedder: Send + Sync {
    /// Names the model and every setting that changes its vectors (weights hash, pooling, length limit);
    /// cached vectors are only reused under the same id.
    fn id(&self) -> &str;

    /// One vector per text, in order.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>>;
}

/// The default model folder: all-MiniLM-L6-v2 as unpacked by `runtimes/setup.sh`.
pub fn default_model_dir() -> PathBuf {
    crate::sandbox::Runtime::default_dir().join("all-MiniLM-L6-v2")
}

/// Embed `texts` through `cache`: only texts whose vectors are not cached go to the model (in batches of
/// `batch`, calling `progress` with the number done after each), and their vectors are appended to the cache.
pub fn embed_cached(
    embedder: &dyn Embedder,
    cache: &mut EmbeddingCache,
    texts: &[&str],
    batch: usize,
    mut progress: impl FnMut(usize),
) -> Result<Vec<Vec<f32>>> {
    let keys: Vec<[u8; 32]> = texts.iter().map(|t| cache::key(t)).collect();
    // Identical programs (common in real logs) are embedded once.
    let mut seen = std::collections::HashSet::new();
    let mut missing: Vec<usize> =
        (0..texts.len()).filter(|&i| cache.get(&keys[i]).is_none() && seen.insert(keys[i])).collect();
    // Batches of similar length waste little on padding.
    missing.sort_by_key(|&i| texts[i].len());
    let mut done = texts.len() - missing.len();
    progress(done);
    for chunk in missing.chunks(batch.max(1)) {
        let batch_texts: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
        let vectors = embedder.embed(&batch_texts)?;
        for (&i, vector) in chunk.iter().zip(vectors) {
            cache.insert(keys[i], vector)?;
        }
        done += chunk.len();
        progress(done);
    }
    cache.flush()?;
    Ok(keys.iter().map(|k| cache.get(k).expect("every vector was computed").to_vec()).collect())
}
