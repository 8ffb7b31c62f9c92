//! Qwen2 decoder, our corrected copy of candle-transformers 0.11's `qwen2.rs`.
//!
//! Three faults of the upstream file are fixed here:
//! - RoPE tables are computed in f32 and only then cast to the model's dtype (upstream builds them in the model
//!   dtype, so bf16 angles are wrong beyond a few hundred positions);
//! - batches are left-padded: each row gets its own positions and a causal mask that also hides its padding
//!   (upstream gives padded batches no causal mask);
//! - [`Qwen2::forward`] at offset 0 starts a new sequence (upstream keeps the old KV cache), and the cache is
//!   preallocated for the whole generation instead of growing by concatenation.
//!
//! The same model runs GGUF files ([`super::gguf`]): there each projection also keeps its quantized weights.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::kv_cache::KvCache;
use candle_nn::{Embedding, Linear, RmsNorm, VarBuilder};

use super::config::Config;
use super::matvec::{self, Quantized};

/// cos and sin of every position's angles, (max_positions, head_dim / 2), computed in f32.
struct Rope {
    cos: Tensor,
    sin: Tensor,
}

impl Rope {
    fn new(cfg: &Config, dtype: DType, device: &Device) -> Result<Self> {
        let half = cfg.head_dim / 2;
        let inv_freq: Vec<f32> =
            (0..half).map(|i| (1.0 / cfg.rope_theta.powf(2.0 * i as f64 / cfg.head_dim as f64)) as f32).collect();
        let inv_freq = Tensor::from_vec(inv_freq, (1, half), device)?;
        let positions = Tensor::arange(0u32, cfg.max_position_embeddings as u32, device)?
            .to_dtype(DType::F32)?
            .reshape((cfg.max_position_embeddings, 1))?;
        let angles = positions.matmul(&inv_freq)?;
        Ok(Self { cos: angles.cos()?.to_dtype(dtype)?, sin: angles.sin()?.to_dtype(dtype)? })
    }

    /// The angles of each row's positions (batch, seq), looked up once per forward pass for every layer.
    fn at(&self, positions: &Tensor) -> Result<Angles> {
        let (b, t) = positions.dims2()?;
        let flat = positions.flatten_all()?;
        let cos = self.cos.index_select(&flat, 0)?.reshape((b, t, ()))?;
        let sin = self.sin.index_select(&flat, 0)?.reshape((b, t, ()))?;
        Ok(Angles { cos, sin })
    }
}

/// cos and sin at the positions of one forward pass, (batch, seq, head_dim / 2).
struct Angles {
    cos: Tensor,
    sin: Tensor,
}

impl Angles {
    /// Rotate `x` (batch, heads, seq, head_dim).
    fn rotate(&self, x: &Tensor) -> Result<Tensor> {
        candle_nn::rotary_emb::rope(&x.contiguous()?, &self.cos, &self.sin)
    }
}

/// Quantized copies of projection weights (a GGUF file's), by Hugging Face tensor name.
pub trait QuantizedWeights {
    /// `None` when `name` has no quantized copy; `bias` is the layer's (dense) bias.
    fn quantized(&self, name: &str, bias: Option<&Tensor>) -> Result<Option<Quantized>>;
}

/// Rows at or below which a projection uses its quantized copy, or else our f32 matrix-vector kernel. Decoding
/// steps (one row per sequence) are bound by reading the weights, so a quarter of the bytes wins; prefill is
/// bound by arithmetic, where f32 GEMM wins.
const QUANTIZED_ROWS: usize = 8;

/// Which kind of forward pass a layer serves. Prefill always multiplies the dense weights, however few its
/// tokens, so that a prompt's numbers do not depend on how much of it came from kept prefixes; decoding steps
/// take the matrix-vector kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    Prefill,
    Step,
}

/// A linear layer: dense weights, and optionally quantized ones for a few rows at a time.
struct Proj {
    dense: Linear,
    quantized: Option<Quantized>,
}

impl Proj {
    fn new(
        input: usize,
        output: usize,
        bias: bool,
        vb: VarBuilder,
        quantized: Option<&dyn QuantizedWeights>,
    ) -> Result<Self> {
        let name = format!("{}.weight", vb.prefix());
        let dense =
            if bias { candle_nn::linear(input, output, vb)? } else { candle_nn::linear_no_bias(input, output, vb)? };
        Self::with_dense(dense, &name, quantized)
    }

    fn with_dense(dense: Linear, name: &str, quantized: Option<&dyn QuantizedWeights>) -> Result<Self> {
        let quantized = match quantized {
            Some(q) => q.quantized(name, dense.bias())?,
            None => None,
        };
        Ok(Self { dense, quantized })
    }

    /// The layer over the last axis of `x`, as one (rows, features) matmul. candle's `Linear` broadcasts its
    /// weight over a batch axis instead, one matmul per sequence, which reads the weights once per row when
    /// decoding.
    fn forward(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        let (mut dims, x) = as_rows(x)?;
        let few = pass == Pass::Step && x.dim(0)? <= QUANTIZED_ROWS;
        let y = match &self.quantized {
            Some(q) if few => q.forward(&x)?,
            _ if few => match matvec::dense(self.dense.weight(), self.dense.bias(), &x)? {
                Some(y) => y,
                None => self.dense.forward(&x)?,
            },
            _ => self.dense.forward(&x)?,
        };
        dims.push(y.dim(1)?);
        y.reshape(dims)
    }
}

/// `x` as one (rows, features) matrix over its last axis, and the leading dims to give the result back.
fn as_rows(x: &Tensor) -> Result<(Vec<usize>, Tensor)> {
    let mut dims = x.dims().to_vec();
    let features = dims.pop().unwrap_or(1);
    let rows: usize = dims.iter().product();
    Ok((dims, x.reshape((rows, features))?))
}

/// Projections of the same input (Q, K and V; gate and up), whose quantized weights are fused into one for
/// decoding when their format allows it: one pass over the thread pool instead of several per step.
struct Fused {
    parts: Vec<Proj>,
    quantized: Option<Quantized>,
}

impl Fused {
    fn new(mut parts: Vec<Proj>) -> Self {
        let quantized =
            parts.iter().map(|p| p.quantized.as_ref()).collect::<Option<Vec<_>>>().and_then(|q| Quantized::fuse(&q));
        if quantized.is_some() {
            for part in &mut parts {
                part.quantized = None; // the fused copy replaces them
            }
        }
        Self { parts, quantized }
    }

    fn forward(&self, x: &Tensor, pass: Pass) -> Result<Vec<Tensor>> {
        let (dims, rows) = as_rows(x)?;
        let few = pass == Pass::Step && rows.dim(0)? <= QUANTIZED_ROWS;
        let Some(q) = self.quantized.as_ref().filter(|_| few) else {
            return self.parts.iter().map(|p| p.forward(x, pass)).collect();
        };
        let y = q.forward(&rows)?;
        let mut start = 0;
        self.parts
            .iter()
            .map(|p| {
                let width = p.dense.weight().dim(0)?;
                let part = y.narrow(1, start, width)?;
                start += width;
                part.reshape([dims.as_slice(), &[width]].concat())
            })
            .collect()
    }
}

struct Attention {
    /// Q, K and V.
    qkv: Fused,
    o_proj: Proj,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    cache: KvCache,
}

impl Attention {
    fn new(cfg: &Config, vb: VarBuilder, q: Option<&dyn QuantizedWeights>) -> Result<Self> {
        let (h, d) = (cfg.hidden_size, cfg.head_dim);
        Ok(Self {
            qkv: Fused::new(vec![
                Proj::new(h, cfg.num_attention_heads * d, true, vb.pp("q_proj"), q)?,
                Proj::new(h, cfg.num_key_value_heads * d, true, vb.pp("k_proj"), q)?,
                Proj::new(h, cfg.num_key_value_heads * d, true, vb.pp("v_proj"), q)?,
            ]),
            o_proj: Proj::new(cfg.num_attention_heads * d, h, false, vb.pp("o_proj"), q)?,
            heads: cfg.num_attention_heads,
            kv_heads: cfg.num_key_value_heads,
            head_dim: d,
            cache: KvCache::new(2, 1),
        })
    }

    fn forward(&mut self, x: &Tensor, angles: &Angles, mask: Option<&Tensor>, pass: Pass) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let split = |y: Tensor, heads: usize| y.reshape((b, t, heads, self.head_dim))?.transpose(1, 2);
        let [q, k, v]: [Tensor; 3] =
            self.qkv.forward(x, pass)?.try_into().map_err(|_| candle_core::Error::Msg("Q, K, V".into()))?;
        let q = angles.rotate(&split(q, self.heads)?)?;
        let k = angles.rotate(&split(k, self.kv_heads)?)?;
        let v = split(v, self.kv_heads)?.contiguous()?;
        // The cached K and V are views into the preallocated cache; matmul reads them in place.
        let (k, v) = self.cache.append(&k, &v)?;
        let keys = k.dim(2)?;
        // Grouped-query attention without copying K and V for every query head: the query heads that share a
        // KV head (heads j·g .. j·g + g − 1 use KV head j) are stacked along the sequence axis.
        let groups = self.heads / self.kv_heads;
        let q = q.reshape((b, self.kv_heads, groups * t, self.head_dim))?;
        let scores = (q.matmul(&k.t()?)? * (1.0 / (self.head_dim as f64).sqrt()))?.reshape((b, self.heads, t, keys))?;
        let scores = match mask {
            Some(mask) => scores.broadcast_add(mask)?,
            None => scores,
        };
        let weights = candle_nn::ops::softmax_last_dim(&scores)?.reshape((b, self.kv_heads, groups * t, keys))?;
        let out = weights.matmul(&v)?.reshape((b, self.heads, t, self.head_dim))?;
        self.o_proj.forward(&out.transpose(1, 2)?.reshape((b, t, self.heads * self.head_dim))?, pass)
    }
}

struct Mlp {
    /// The gate and up projections.
    gate_up: Fused,
    down_proj: Proj,
}

impl Mlp {
    fn forward(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        let [gate, up]: [Tensor; 2] =
            self.gate_up.forward(x, pass)?.try_into().map_err(|_| candle_core::Error::Msg("gate, up".into()))?;
        self.down_proj.forward(&(candle_nn::ops::silu(&gate)? * up)?, pass)
    }
}

struct Layer {
    attn: Attention,
    mlp: Mlp,
    input_norm: RmsNorm,
    post_attention_norm: RmsNorm,
}

/// How many recent prompts keep their keys and values. Requests of one problem share the system prompt and the
/// statement, a stream's attempts share everything before their feedback, and two or three streams decode in
/// turn; each kept token costs 2 · layers · KV heads · head size values (24.6 kB for Qwen2.5-0.5B in f32).
const KEPT_PREFIXES: usize = 4;

/// Prompt tokens computed in one forward pass. Attention scores take heads · chunk · keys values per row: a
/// stream's 8,000-token prompt at once needed 14 · 8,000² f32 (3.6 GB) per layer, twice (scores and softmax),
/// and spent its time in page faults; chunks of 512 keep that under 250 MB and cost nothing measurable.
const PREFILL_CHUNK: usize = 512;

/// A prompt's tokens and each layer's keys and values for them, (1, KV heads, tokens, head size).
struct Prefix {
    tokens: Vec<u32>,
    kv: Vec<(Tensor, Tensor)>,
}

/// A Qwen2 causal language model.
pub struct Qwen2 {
    embed_tokens: Embedding,
    layers: Vec<Layer>,
    norm: RmsNorm,
    lm_head: Proj,
    rope: Rope,
    max_positions: usize,
    /// Each row's left padding in the sequence being decoded.
    padding: Vec<usize>,
    /// Positions already in the KV cache.
    cached: usize,
    /// Prompt tokens per forward pass ([`PREFILL_CHUNK`]; tests lower it).
    prefill_chunk: usize,
    /// The keys and values of recent single prompts, newest first, for [`Qwen2::prefill_shared`].
    prefixes: Vec<Prefix>,
    dtype: DType,
    device: Device,
}

impl Qwen2 {
    /// The model of `vb`'s weights; with `quantized`, projections also keep quantized copies for decoding.
    pub fn new(cfg: &Config, vb: VarBuilder, quantized: Option<&dyn QuantizedWeights>) -> Result<Self> {
        let q = quantized;
        let m = vb.pp("model");
        let embed_tokens = candle_nn::embedding(cfg.vocab_size, cfg.hidden_size, m.pp("embed_tokens"))?;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let l = m.pp("layers").pp(i);
            let mlp = l.pp("mlp");
            let (h, f) = (cfg.hidden_size, cfg.intermediate_size);
            layers.push(Layer {
                attn: Attention::new(cfg, l.pp("self_attn"), q)?,
                mlp: Mlp {
                    gate_up: Fused::new(vec![
                        Proj::new(h, f, false, mlp.pp("gate_proj"), q)?,
                        Proj::new(h, f, false, mlp.pp("up_proj"), q)?,
                    ]),
                    down_proj: Proj::new(f, h, false, mlp.pp("down_proj"), q)?,
                },
                input_norm: candle_nn::rms_norm(h, cfg.rms_norm_eps, l.pp("input_layernorm"))?,
                post_attention_norm: candle_nn::rms_norm(h, cfg.rms_norm_eps, l.pp("post_attention_layernorm"))?,
            });
        }
        let norm = candle_nn::rms_norm(cfg.hidden_size, cfg.rms_norm_eps, m.pp("norm"))?;
        let lm_head = if cfg.tie_word_embeddings && !vb.contains_tensor("lm_head.weight") {
            Proj::with_dense(Linear::new(embed_tokens.embeddings().clone(), None), "lm_head.weight", q)?
        } else {
            Proj::new(cfg.hidden_size, cfg.vocab_size, false, vb.pp("lm_head"), q)?
        };
        Ok(Self {
            embed_tokens,
            layers,
            norm,
            lm_head,
            rope: Rope::new(cfg, vb.dtype(), vb.device())?,
            max_positions: cfg.max_position_embeddings,
            padding: vec![],
            cached: 0,
            prefill_chunk: PREFILL_CHUNK,
            prefixes: vec![],
            dtype: vb.dtype(),
            device: vb.device().clone(),
        })
    }

    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// Start a batch of sequences: `rows` are token ids, left-padded here to one length. Returns the logits
    /// (f32) of each row's last token, (rows, vocab). `capacity` is the longest the sequences will grow (prompt
    /// and new tokens); the KV cache is allocated for it once.
    pub fn prefill(&mut self, rows: &[Vec<u32>], capacity: usize) -> Result<Tensor> {
        let longest = rows.iter().map(Vec::len).max().unwrap_or(0);
        if longest == 0 || capacity > self.max_positions {
            candle_core::bail!("{longest} prompt tokens, room for {capacity} of {} positions", self.max_positions);
        }
        self.padding = rows.iter().map(|r| longest - r.len()).collect();
        self.cached = 0;
        for layer in &mut self.layers {
            layer.attn.cache = KvCache::new(2, capacity);
        }
        let ids: Vec<u32> =
            rows.iter().flat_map(|r| std::iter::repeat_n(0, longest - r.len()).chain(r.iter().copied())).collect();
        let ids = Tensor::from_vec(ids, (rows.len(), longest), &self.device)?;
        self.forward_chunked(&ids)
    }

    /// The prompt `ids` (rows, tokens) in chunks of at most `prefill_chunk` tokens; the last one's logits.
    fn forward_chunked(&mut self, ids: &Tensor) -> Result<Tensor> {
        let tokens = ids.dim(1)?;
        let mut start = 0;
        loop {
            let len = self.prefill_chunk.min(tokens - start);
            let logits = self.forward(&ids.narrow(1, start, len)?, Pass::Prefill)?;
            start += len;
            if start == tokens {
                return Ok(logits);
            }
        }
    }

    /// Start `copies` sequences of one prompt: it is prefilled once, from the end of the longest prefix it shares
    /// with a recent prompt (whose keys and values are kept), and its cache copied to each sequence. Returns
    /// the logits of the last token, (copies, vocab). The result is the same as [`Qwen2::prefill`]'s of
    /// `copies` equal rows.
    pub fn prefill_shared(&mut self, prompt: &[u32], copies: usize, capacity: usize) -> Result<Tensor> {
        if prompt.is_empty() || copies == 0 || capacity > self.max_positions || capacity < prompt.len() {
            candle_core::bail!(
                "{} prompt tokens, {copies} copies, room for {capacity} of {} positions",
                prompt.len(),
                self.max_positions
            );
        }
        // At least one token is computed afresh: its logits are the answer.
        let (reused, kept) = self
            .prefixes
            .iter()
            .enumerate()
            .map(|(i, p)| (common_prefix(&p.tokens, prompt).min(prompt.len() - 1), i))
            .max()
            .unwrap_or((0, 0));
        let kept = (reused > 0).then(|| self.prefixes[kept].kv.clone());
        self.padding = vec![0];
        self.cached = reused;
        for (l, layer) in self.layers.iter_mut().enumerate() {
            layer.attn.cache = KvCache::new(2, prompt.len());
            if let Some(kept) = &kept {
                let (k, v) = &kept[l];
                layer
                    .attn
                    .cache
                    .append(&k.narrow(2, 0, reused)?.contiguous()?, &v.narrow(2, 0, reused)?.contiguous()?)?;
            }
        }
        let ids = Tensor::from_vec(prompt[reused..].to_vec(), (1, prompt.len() - reused), &self.device)?;
        let logits = self.forward_chunked(&ids)?;
        // Keep this prompt (in place of those it extends), then copy its cache to every sequence.
        let mut kv = Vec::with_capacity(self.layers.len());
        for layer in &mut self.layers {
            let (k, v) = (layer.attn.cache.k()?, layer.attn.cache.v()?);
            let (Some(k), Some(v)) = (k, v) else { candle_core::bail!("an empty cache after prefill") };
            layer.attn.cache = KvCache::new(2, capacity);
            let repeat = |t: &Tensor| t.repeat((copies, 1, 1, 1));
            layer.attn.cache.append(&repeat(&k)?, &repeat(&v)?)?;
            kv.push((k, v));
        }
        self.prefixes.retain(|p| !prompt.starts_with(&p.tokens));
        self.prefixes.insert(0, Prefix { tokens: prompt.to_vec(), kv });
        self.prefixes.truncate(KEPT_PREFIXES);
        self.padding = vec![0; copies];
        logits.repeat((copies, 1))
    }

    /// Feed one more token per row; returns the next logits, (rows, vocab).
    pub fn step(&mut self, tokens: &[u32]) -> Result<Tensor> {
        let ids = Tensor::from_vec(tokens.to_vec(), (tokens.len(), 1), &self.device)?;
        self.forward(&ids, Pass::Step)
    }

    fn forward(&mut self, ids: &Tensor, pass: Pass) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let offset = self.cached;
        let positions: Vec<u32> = self
            .padding
            .iter()
            .flat_map(|&pad| (offset..offset + t).map(move |p| p.saturating_sub(pad) as u32))
            .collect();
        let angles = self.rope.at(&Tensor::from_vec(positions, (b, t), &self.device)?)?;
        let mask = self.mask(t, offset)?;
        let mut x = self.embed_tokens.forward(ids)?;
        for layer in &mut self.layers {
            let attn = layer.attn.forward(&layer.input_norm.forward(&x)?, &angles, mask.as_ref(), pass)?;
            x = (x + attn)?;
            x = (&x + layer.mlp.forward(&layer.post_attention_norm.forward(&x)?, pass)?)?;
        }
        self.cached += t;
        let last = x.narrow(1, t - 1, 1)?.squeeze(1)?;
        // The last positions' logits are few rows even in a prefill: the matrix-vector kernels serve them.
        self.lm_head.forward(&self.norm.forward(&last)?, Pass::Step)?.to_dtype(DType::F32)
    }

    /// Additive mask (rows, 1, t, offset + t): a query sees earlier keys of its own row that are not padding.
    /// A padding query sees itself, so its softmax stays finite. `None` when nothing is hidden.
    fn mask(&self, t: usize, offset: usize) -> Result<Option<Tensor>> {
        if t == 1 && self.padding.iter().all(|&p| p == 0) {
            return Ok(None);
        }
        let keys = offset + t;
        let mut mask = Vec::with_capacity(self.padding.len() * t * keys);
        for &pad in &self.padding {
            for q in offset..offset + t {
                mask.extend((0..keys).map(|k| if (k <= q && k >= pad) || k == q { 0f32 } else { f32::NEG_INFINITY }));
            }
        }
        let mask = Tensor::from_vec(mask, (self.padding.len(), 1, t, keys), &self.device)?;
        Ok(Some(mask.to_dtype(self.dtype)?))
    }
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::qwen::random::Shape;

    fn tiny_model() -> Qwen2 {
        let cfg = Config::parse(&Shape::TINY.config_json().to_string()).unwrap();
        let weights = crate::generate::qwen::random::weights(&Shape::TINY, 7).unwrap().into_iter().collect();
        Qwen2::new(&cfg, VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu), None).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    /// One prompt prefilled once for three samples decodes as three equal rows do; a prompt that extends a
    /// kept one (its prefix's keys and values reused) gives the logits of a cold prefill.
    #[test]
    fn shared_prefill_and_kept_prefixes_equal_cold_prefill() {
        let prompt: Vec<u32> = (0..90).map(|i| (i * 37 % 1000) as u32).collect();
        let mut rows = tiny_model();
        let mut shared = tiny_model();
        let cold = rows.prefill(&vec![prompt.clone(); 3], 100).unwrap();
        let warm = shared.prefill_shared(&prompt, 3, 100).unwrap();
        assert_eq!(warm.dims(), &[3, Shape::TINY.vocab]);
        assert!(max_diff(&cold, &warm) < 1e-5, "shared prefill: {}", max_diff(&cold, &warm));
        let (a, b) = (rows.step(&[5, 6, 7]).unwrap(), shared.step(&[5, 6, 7]).unwrap());
        assert!(max_diff(&a, &b) < 1e-5, "the step after: {}", max_diff(&a, &b));
        // The same prompt followed by a new suffix: 90 of its 130 tokens come from the kept prefix.
        let longer: Vec<u32> = prompt.iter().copied().chain((0..40).map(|i| 2000 + i)).collect();
        let reused = shared.prefill_shared(&longer, 1, 140).unwrap();
        assert_eq!(shared.prefixes.len(), 1, "the longer prompt replaces the one it extends");
        assert_eq!(shared.cached, longer.len());
        let cold = tiny_model().prefill(std::slice::from_ref(&longer), 140).unwrap();
        assert!(max_diff(&cold, &reused) < 1e-5, "reused prefix: {}", max_diff(&cold, &reused));
        let (a, b) = (tiny_model_after(&longer).step(&[9]).unwrap(), shared.step(&[9]).unwrap());
        assert!(max_diff(&a, &b) < 1e-5, "the step after a reused prefix: {}", max_diff(&a, &b));
        // The very same prompt again: all but its last token reused.
        let again = shared.prefill_shared(&longer, 2, 140).unwrap();
        assert!(max_diff(&cold.repeat((2, 1)).unwrap(), &again) < 1e-5);
        // A prompt that shares only the first 90 tokens keeps the other one.
        let other: Vec<u32> = prompt.iter().copied().chain([3000, 3001]).collect();
        shared.prefill_shared(&other, 1, 100).unwrap();
        assert_eq!(shared.prefixes.iter().map(|p| p.tokens.len()).collect::<Vec<_>>(), [92, 130]);
    }

    /// A prompt computed a few tokens at a time (padded rows and a kept prefix too) gives the logits of one pass.
    #[test]
    fn chunked_prefill_equals_one_pass() {
        let long: Vec<u32> = (0..61).map(|i| (i * 53 % 1000) as u32).collect();
        let rows = [long.clone(), long[..40].to_vec()];
        let whole = tiny_model().prefill(&rows, 70).unwrap();
        let mut chunked = tiny_model();
        chunked.prefill_chunk = 8;
        let parts = chunked.prefill(&rows, 70).unwrap();
        assert!(max_diff(&whole, &parts) < 1e-5, "padded rows in chunks: {}", max_diff(&whole, &parts));
        let mut shared = tiny_model();
        shared.prefill_chunk = 7;
        shared.prefill_shared(&long[..20], 1, 70).unwrap();
        let reused = shared.prefill_shared(&long, 1, 70).unwrap();
        let cold = tiny_model().prefill(std::slice::from_ref(&long), 70).unwrap();
        assert!(max_diff(&cold, &reused) < 1e-5, "kept prefix, then chunks: {}", max_diff(&cold, &reused));
    }

    fn tiny_model_after(prompt: &[u32]) -> Qwen2 {
        let mut model = tiny_model();
        model.prefill(&[prompt.to_vec()], prompt.len() + 10).unwrap();
        model
    }

    /// The largest |error| of a (positions, half) table against cos or sin computed in f64.
    fn error(table: &Tensor, cfg: &Config, f: fn(f64) -> f64) -> f64 {
        let table: Vec<Vec<f32>> = table.to_dtype(DType::F32).unwrap().to_vec2().unwrap();
        let mut worst = 0f64;
        for (p, row) in table.iter().enumerate() {
            for (i, &v) in row.iter().enumerate() {
                let angle = p as f64 / cfg.rope_theta.powf(2.0 * i as f64 / cfg.head_dim as f64);
                worst = worst.max((f64::from(v) - f(angle)).abs());
            }
        }
        worst
    }

    #[test]
    fn bf16_rope_tables_are_right_at_every_position() {
        let cfg = Config::parse(&Shape::TINY.config_json().to_string()).unwrap();
        let rope = Rope::new(&cfg, DType::BF16, &Device::Cpu).unwrap();
        // bf16 holds values in [-1, 1] to within 2^-9; computing the angles in f32 keeps that at 4096 positions.
        assert!(error(&rope.cos, &cfg, f64::cos) < 4e-3);
        assert!(error(&rope.sin, &cfg, f64::sin) < 4e-3);
        // Upstream builds positions and angles in bf16: position 3001 becomes 3008 and the table is far off.
        let half = cfg.head_dim / 2;
        let inv_freq: Vec<f32> =
            (0..half).map(|i| (1.0 / cfg.rope_theta.powf(2.0 * i as f64 / cfg.head_dim as f64)) as f32).collect();
        let inv_freq = Tensor::from_vec(inv_freq, (1, half), &Device::Cpu).unwrap().to_dtype(DType::BF16).unwrap();
        let positions = Tensor::arange(0u32, 4096, &Device::Cpu)
            .unwrap()
            .to_dtype(DType::BF16)
            .unwrap()
            .reshape((4096, 1))
            .unwrap();
        let upstream = positions.matmul(&inv_freq).unwrap().cos().unwrap();
        assert!(error(&upstream, &cfg, f64::cos) > 0.5, "the fault this copy fixes");
    }
}
