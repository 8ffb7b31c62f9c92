//! What our two encoders (`bert.rs`, `gte.rs`) are built of: loading a linear layer and a layer norm, the
//! padding bias of a batch, and self-attention over packed query/key/value projections.

use anyhow::Result;
use candle_core::{DType, Tensor};
use candle_nn::{LayerNorm, Linear, VarBuilder};

/// The `weight` (outputs, inputs) and `bias` of a linear layer under `vb`.
pub fn linear(vb: VarBuilder, inputs: usize, outputs: usize) -> Result<Linear> {
    Ok(Linear::new(vb.get((outputs, inputs), "weight")?, Some(vb.get(outputs, "bias")?)))
}

/// The `weight` and `bias` of a layer norm over `size` features under `vb`.
pub fn layer_norm(vb: VarBuilder, size: usize, eps: f64) -> Result<LayerNorm> {
    Ok(LayerNorm::new(vb.get(size, "weight")?, vb.get(size, "bias")?, eps))
}

/// 0 on real tokens, the lowest float on padding: added to every row of attention scores, (batch, 1, 1, tokens),
/// for `mask` (batch, tokens) 1 on real tokens.
pub fn padding_bias(mask: &Tensor) -> Result<Tensor> {
    let (batch, tokens) = mask.dims2()?;
    Ok(((mask.to_dtype(DType::F32)? - 1.0)? * f64::from(f32::MAX))?.reshape((batch, 1, 1, tokens))?)
}

/// The query, key and value, each (batch, heads, tokens, head), of a packed projection (batch, tokens, 3 × hidden).
pub fn split_heads(packed: &Tensor, heads: usize) -> Result<[Tensor; 3]> {
    let (batch, tokens, three_hidden) = packed.dims3()?;
    let head = three_hidden / 3 / heads;
    // (batch, tokens, 3, heads, head) → (3, batch, heads, tokens, head).
    let qkv = packed.reshape((batch, tokens, 3, heads, head))?.permute((2, 0, 3, 1, 4))?;
    Ok([qkv.get(0)?, qkv.get(1)?, qkv.get(2)?])
}

/// Scaled dot-product attention of `q`, `k`, `v` (batch, heads, tokens, head) with `padding` from
/// [`padding_bias`]: the context, heads joined again, (batch, tokens, heads × head).
pub fn attend(q: &Tensor, k: &Tensor, v: &Tensor, padding: &Tensor) -> Result<Tensor> {
    let (batch, heads, tokens, head) = q.dims4()?;
    let (q, k, v) = (q.contiguous()?, k.contiguous()?, v.contiguous()?);
    let scores = (q.matmul(&k.t()?)? / (head as f64).sqrt())?.broadcast_add(padding)?;
    let probs = candle_nn::ops::softmax_last_dim(&scores)?;
    Ok(probs.matmul(&v)?.transpose(1, 2)?.reshape((batch, tokens, heads * head))?)
}
