//! Quantized projection weights for decoding: candle's kernels, and our own for Q5_0, the format most
//! matrices of the Qwen2.5-Coder-0.5B GGUF we fetch use. candle's CPU dot product for Q5_0 is scalar, and
//! converting to Q8_0 (which it does vectorize) reads half again as many bytes per token; decoding is bound
//! by reading the weights, so this one reads the file's 22-byte blocks as they are, with AVX2 where the CPU
//! has it.
//!
//! The arithmetic is llama.cpp's: each activation row is quantized to Q8_0 (32 values, an f16 scale), and a
//! weight block dotted with it is `d_w · d_x · Σ (q5 − 16) · q8`.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Module, Result, Tensor};
use half::f16;

/// Values per block (both formats).
const BLOCK: usize = 32;
/// Bytes of a Q5_0 block: f16 scale, 32 high bits, 16 bytes of low nibbles.
const Q5_0_BYTES: usize = 22;

/// A linear layer's quantized weights and its bias.
pub enum Quantized {
    Candle { weights: QMatMul, bias: Option<Tensor> },
    Q5_0(Q5_0Matrix),
}

impl Quantized {
    /// A tensor of the file; Q5_0 gets our kernel.
    pub fn new(tensor: QTensor, bias: Option<&Tensor>) -> Result<Self> {
        if tensor.dtype() == GgmlDType::Q5_0 {
            let (n, k) = tensor.shape().dims2()?;
            let bias = bias.map(|b| b.to_vec1::<f32>()).transpose()?;
            Ok(Self::Q5_0(Q5_0Matrix { blocks: tensor.data()?.into_owned(), bias, n, k }))
        } else {
            Ok(Self::Candle { weights: QMatMul::from_qtensor(tensor)?, bias: bias.cloned() })
        }
    }

    /// Layers with the same inputs as one (their outputs side by side), so that decoding makes one pass over
    /// the thread pool instead of several; `None` unless all are Q5_0.
    pub fn fuse(parts: &[&Quantized]) -> Option<Self> {
        let matrices: Vec<&Q5_0Matrix> = parts.iter().map(|p| if let Self::Q5_0(m) = p { Some(m) } else { None }).collect::<Option<_>>()?;
        let k = matrices.first()?.k;
        if matrices.iter().any(|m| m.k != k) {
            return None;
        }
        let with_bias = matrices.iter().any(|m| m.bias.is_some());
        let bias = with_bias.then(|| matrices.iter().flat_map(|m| m.bias.clone().unwrap_or_else(|| vec![0.0; m.n])).collect());
        Some(Self::Q5_0(Q5_0Matrix {
            blocks: matrices.iter().flat_map(|m| m.blocks.iter().copied()).collect(),
            bias,
            n: matrices.iter().map(|m| m.n).sum(),
            k,
        }))
    }

    /// `x` (rows, k) f32 times the transposed weights, plus the bias: (rows, n).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Candle { weights, bias: None } => weights.forward(x),
            Self::Candle { weights, bias: Some(bias) } => weights.forward(x)?.broadcast_add(bias),
            Self::Q5_0(q) => q.forward(x),
        }
    }
}

/// An (n, k) Q5_0 matrix, row after row of blocks as in the file, and its bias.
pub struct Q5_0Matrix {
    blocks: Vec<u8>,
    bias: Option<Vec<f32>>,
    n: usize,
    k: usize,
}

/// One activation block quantized to Q8_0.
#[derive(Clone, Copy)]
struct Q8Block {
    d: f32,
    qs: [i8; BLOCK],
}

fn quantize_row(x: &[f32]) -> Vec<Q8Block> {
    x.chunks_exact(BLOCK)
        .map(|chunk| {
            let amax = chunk.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            let inverse = if d == 0.0 { 0.0 } else { 1.0 / d };
            let mut qs = [0i8; BLOCK];
            for (q, v) in qs.iter_mut().zip(chunk) {
                *q = (v * inverse).round() as i8;
            }
            // The scale is stored as f16 in llama.cpp's Q8_0; rounding it the same way keeps the two equal.
            Q8Block { d: f16::from_f32(d).to_f32(), qs }
        })
        .collect()
}

impl Q5_0Matrix {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (rows, k) = x.dims2()?;
        if k != self.k || k % BLOCK != 0 {
            candle_core::bail!("Q5_0 matmul: {k} inputs for a ({}, {}) matrix", self.n, self.k);
        }
        let x: Vec<f32> = x.flatten_all()?.to_vec1()?;
        let activations: Vec<Vec<Q8Block>> = x.chunks_exact(k).map(quantize_row).collect();
        let row_bytes = k / BLOCK * Q5_0_BYTES;
        let dot = dot_function();
        // Each weight row is read once and dotted with every activation row while it is in L1. The work runs
        // on candle's own thread pool: a second pool would compete with its spinning workers for the cores.
        let mut out = vec![0f32; rows * self.n];
        let out_ptr = out.as_mut_ptr() as usize;
        let width = self.n;
        candle_core::utils::barrier_pool().execute_chunked(self.n, |columns| {
            for n in columns {
                let weights = &self.blocks[n * row_bytes..(n + 1) * row_bytes];
                let bias = self.bias.as_ref().map_or(0.0, |b| b[n]);
                for (r, a) in activations.iter().enumerate() {
                    // SAFETY: each (row, column) cell is written by exactly one work item, inside `out`.
                    unsafe { *(out_ptr as *mut f32).add(r * width + n) = dot(weights, a) + bias };
                }
            }
        });
        Tensor::from_vec(out, (rows, self.n), &candle_core::Device::Cpu)
    }
}

type Dot = fn(&[u8], &[Q8Block]) -> f32;

fn dot_function() -> Dot {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features the function is compiled for.
        return |w, a| unsafe { avx2::dot(w, a) };
    }
    dot_scalar
}

/// The low 5-bit values of block `b` of a weight row, minus 16.
fn unpack(block: &[u8]) -> (f32, [i8; BLOCK]) {
    let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
    let high = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
    let mut q = [0i8; BLOCK];
    for j in 0..BLOCK / 2 {
        let low = block[6 + j];
        q[j] = ((low & 0x0F) | (((high >> j) & 1) << 4) as u8) as i8 - 16;
        q[j + 16] = ((low >> 4) | (((high >> (j + 16)) & 1) << 4) as u8) as i8 - 16;
    }
    (d, q)
}

fn dot_scalar(weights: &[u8], activations: &[Q8Block]) -> f32 {
    weights
        .chunks_exact(Q5_0_BYTES)
        .zip(activations)
        .map(|(block, a)| {
            let (d, q) = unpack(block);
            let sum: i32 = q.iter().zip(&a.qs).map(|(&w, &x)| i32::from(w) * i32::from(x)).sum();
            d * a.d * sum as f32
        })
        .sum()
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{BLOCK, Q5_0_BYTES, Q8Block};
    use half::f16;

    /// 32 bytes, byte i all ones where bit i of `bits` is set.
    #[target_feature(enable = "avx2")]
    fn bytes_from_bits(bits: u32) -> __m256i {
        let spread = _mm256_shuffle_epi8(
            _mm256_set1_epi32(bits as i32),
            _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0),
        );
        // Every bit but bit i%8 of byte i set: the byte is all ones exactly when that bit was.
        let others = _mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe_u64 as i64));
        _mm256_cmpeq_epi8(others, _mm256_set1_epi64x(-1))
    }

    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot(weights: &[u8], activations: &[Q8Block]) -> f32 {
        let mut acc = _mm256_setzero_ps();
        for (block, a) in weights.chunks_exact(Q5_0_BYTES).zip(activations) {
            let d = f16::from_le_bytes([block[0], block[1]]).to_f32() * a.d;
            let high = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
            // SAFETY: the block holds 16 nibble bytes from offset 6, the activation 32 bytes.
            let (low, x) = unsafe {
                (
                    _mm_loadu_si128(block[6..].as_ptr().cast()),
                    _mm256_loadu_si256(a.qs.as_ptr().cast()),
                )
            };
            // Values 0..16 from the low nibbles, 16..32 from the high ones.
            let nibbles =
                _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(low, 4), low), _mm256_set1_epi8(0x0F));
            // A value whose fifth bit is clear is nibble − 16: OR in 0xF0 to make it that negative byte.
            let clear = _mm256_andnot_si256(bytes_from_bits(high), _mm256_set1_epi8(0xF0u8 as i8));
            let w = _mm256_or_si256(nibbles, clear);
            // Signed bytes times signed bytes: |w| times x with w's sign, as pairs, then as i32 lanes.
            let pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
            let sums = _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sums), acc);
        }
        let half = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
        let quarter = _mm_add_ps(half, _mm_movehl_ps(half, half));
        _mm_cvtss_f32(_mm_add_ss(quarter, _mm_shuffle_ps(quarter, quarter, 1)))
    }

    const _: () = assert!(BLOCK == 32);
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::*;

    /// Our Q5_0 kernel against candle's (scalar) Q5_0 matmul and against the dequantized weights in f32.
    #[test]
    fn q5_0_matmul_equals_candle_and_dequantized() {
        let (n, k) = (70, 896);
        let weights = Tensor::randn(0f32, 0.05, (n, k), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&weights, GgmlDType::Q5_0).unwrap();
        let dense = q.dequantize(&Device::Cpu).unwrap();
        let x = Tensor::randn(0f32, 1.0, (3, k), &Device::Cpu).unwrap();
        let ours = Quantized::new(QTensor::quantize(&weights, GgmlDType::Q5_0).unwrap(), None).unwrap().forward(&x).unwrap();
        let candle = QMatMul::from_qtensor(q).unwrap().forward(&x).unwrap();
        let exact = x.matmul(&dense.t().unwrap()).unwrap();
        let diff = |a: &Tensor, b: &Tensor| (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        assert!(diff(&ours, &candle) < 1e-3, "same arithmetic as candle: {}", diff(&ours, &candle));
        assert!(diff(&ours, &exact) < 0.05, "close to f32 on the dequantized weights: {}", diff(&ours, &exact));
        // The scalar path, which machines without AVX2 take, agrees with the vectorized one.
        let rows: Vec<Vec<f32>> = x.to_vec2().unwrap();
        let Quantized::Q5_0(m) = Quantized::new(QTensor::quantize(&weights, GgmlDType::Q5_0).unwrap(), None).unwrap() else { unreachable!() };
        let row_bytes = k / BLOCK * Q5_0_BYTES;
        let a = quantize_row(&rows[1]);
        for col in [0, 17, 69] {
            let w = &m.blocks[col * row_bytes..(col + 1) * row_bytes];
            assert!((dot_scalar(w, &a) - dot_function()(w, &a)).abs() < 1e-4);
        }
        // Two layers fused, with a bias on one: the outputs side by side.
        let bias = Tensor::arange(0f32, n as f32, &Device::Cpu).unwrap();
        let with_bias = Quantized::new(QTensor::quantize(&weights, GgmlDType::Q5_0).unwrap(), Some(&bias)).unwrap();
        let without = Quantized::new(QTensor::quantize(&weights, GgmlDType::Q5_0).unwrap(), None).unwrap();
        let fused = Quantized::fuse(&[&with_bias, &without]).unwrap().forward(&x).unwrap();
        assert!(diff(&fused.narrow(1, 0, n).unwrap(), &ours.broadcast_add(&bias).unwrap()) < 1e-3);
        assert!(diff(&fused.narrow(1, n, n).unwrap(), &ours) < 1e-6);
    }
}
