//! The matrix-vector products of decoding, where each step multiplies a few rows by every weight once: f32
//! weights ([`dense`]: candle's GEMM is built for many rows and leaves single rows far from the memory's
//! speed), and quantized ones: our own kernels for Q5_0 and Q8_0, the formats of most matrices
//! and of the output layer of the Qwen2.5-Coder-0.5B GGUF we fetch, and candle's for the rest. candle's CPU dot
//! product for Q5_0 is scalar, and its Q8_0 one converts two f16 scales per block through a function call;
//! decoding reads every weight once per token, so these read the file's blocks as they are, with AVX-512 VNNI
//! or AVX2 where the CPU has it ([`x86`]).
//!
//! The arithmetic is llama.cpp's: each activation row is quantized to Q8_0 (32 values, an f16 scale), and a
//! weight block dotted with it is `d_w · d_x · Σ w · x` (for Q5_0, `w = q5 − 16`).

#[cfg(target_arch = "x86_64")]
mod x86;

pub use dense::dense;
pub use low_rank::LowRank;

mod dense;
mod low_rank;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Module, Result, Tensor};
use half::f16;

/// Values per block (all formats here).
const BLOCK: usize = 32;
/// Bytes of a Q5_0 block: f16 scale, 32 high bits, 16 bytes of low nibbles.
const Q5_0_BYTES: usize = 22;
/// Bytes of a Q8_0 block: f16 scale, 32 signed bytes.
const Q8_0_BYTES: usize = 34;

/// A linear layer's quantized weights and its bias.
pub enum Quantized {
    Candle {
        weights: QMatMul,
        bias: Option<Tensor>,
    },
    Own(BlockMatrix),
    /// Quantized weights plus LoRA side paths, each on its slice of the output columns (one per layer fused in).
    Adapted {
        base: Box<Quantized>,
        side: Vec<(usize, LowRank)>,
    },
}

impl Quantized {
    /// A tensor of the file; Q5_0 and Q8_0 get our kernels.
    pub fn new(tensor: QTensor, bias: Option<&Tensor>) -> Result<Self> {
        let format = match tensor.dtype() {
            GgmlDType::Q5_0 => Format::Q5_0,
            GgmlDType::Q8_0 => Format::Q8_0,
            _ => return Ok(Self::Candle { weights: QMatMul::from_qtensor(tensor)?, bias: bias.cloned() }),
        };
        let (n, k) = tensor.shape().dims2()?;
        let bias = bias.map(|b| b.to_vec1::<f32>()).transpose()?;
        Ok(Self::Own(BlockMatrix { format, blocks: tensor.data()?.into_owned(), bias, n, k }))
    }

    /// `self` with `side` added to its output.
    pub fn adapted(self, side: LowRank) -> Self {
        Self::Adapted { base: Box::new(self), side: vec![(0, side)] }
    }

    /// Layers with the same inputs as one (their outputs side by side), so that decoding makes one pass over
    /// the thread pool instead of several; `None` unless all are ours and of one format. Side paths move to
    /// their layer's columns of the fused output.
    pub fn fuse(parts: &[&Quantized]) -> Option<Self> {
        let matrices: Vec<&BlockMatrix> = parts.iter().map(|&p| p.plain().own()).collect::<Option<_>>()?;
        let first = matrices.first()?;
        if matrices.iter().any(|m| m.k != first.k || m.format != first.format) {
            return None;
        }
        let with_bias = matrices.iter().any(|m| m.bias.is_some());
        let bias =
            with_bias.then(|| matrices.iter().flat_map(|m| m.bias.clone().unwrap_or_else(|| vec![0.0; m.n])).collect());
        let fused = Self::Own(BlockMatrix {
            format: first.format,
            blocks: matrices.iter().flat_map(|m| m.blocks.iter().copied()).collect(),
            bias,
            n: matrices.iter().map(|m| m.n).sum(),
            k: first.k,
        });
        let mut side = Vec::new();
        let mut offset = 0;
        for (part, matrix) in parts.iter().zip(&matrices) {
            if let Self::Adapted { side: own, .. } = part {
                side.extend(own.iter().map(|(at, low_rank)| (offset + at, low_rank.clone())));
            }
            offset += matrix.n;
        }
        Some(if side.is_empty() { fused } else { Self::Adapted { base: Box::new(fused), side } })
    }

    /// The quantized weights without side paths.
    fn plain(&self) -> &Quantized {
        match self {
            Self::Adapted { base, .. } => base,
            other => other,
        }
    }

    fn own(&self) -> Option<&BlockMatrix> {
        match self {
            Self::Own(m) => Some(m),
            _ => None,
        }
    }

    /// `x` (rows, k) f32 times the transposed weights, plus the bias: (rows, n).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Candle { weights, bias: None } => weights.forward(x),
            Self::Candle { weights, bias: Some(bias) } => weights.forward(x)?.broadcast_add(bias),
            Self::Own(m) => m.forward(x),
            Self::Adapted { base, side } => {
                let xs: Vec<f32> = x.flatten_all()?.to_vec1()?;
                let projected: Vec<(usize, &LowRank, Vec<f32>)> =
                    side.iter().map(|(at, l)| (*at, l, l.project(&xs))).collect();
                // Column c of row r of the side paths (0 outside them).
                let side = |c: usize, r: usize| -> f32 {
                    let part = projected.iter().find(|(at, l, _)| (*at..at + l.outputs()).contains(&c));
                    part.map_or(0.0, |(at, l, ax)| l.at(c - at, l.row(ax, r)))
                };
                let rows = x.dims2()?.0;
                match base.as_ref() {
                    // Ours: the side paths' B products in the same pass over the thread pool as the layer.
                    Self::Own(m) => {
                        Tensor::from_vec(m.forward_plus(&xs, side)?, (rows, m.n), &candle_core::Device::Cpu)
                    }
                    other => {
                        let y = other.forward(x)?;
                        let width = y.dims2()?.1;
                        let extra = by_columns(rows, width, side);
                        let out: Vec<f32> =
                            y.flatten_all()?.to_vec1::<f32>()?.into_iter().zip(extra).map(|(y, e)| y + e).collect();
                        Tensor::from_vec(out, (rows, width), &candle_core::Device::Cpu)
                    }
                }
            }
        }
    }
}

/// The block formats our kernels read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Q5_0,
    Q8_0,
}

impl Format {
    fn block_bytes(self) -> usize {
        match self {
            Self::Q5_0 => Q5_0_BYTES,
            Self::Q8_0 => Q8_0_BYTES,
        }
    }
}

/// An (n, k) matrix of one block format, row after row of blocks as in the file, and its bias.
pub struct BlockMatrix {
    format: Format,
    blocks: Vec<u8>,
    bias: Option<Vec<f32>>,
    n: usize,
    k: usize,
}

/// One activation block quantized to Q8_0, with the sum of its values (for Q5_0's offset of 16).
#[derive(Clone, Copy)]
struct Q8Block {
    d: f32,
    sum: i32,
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
            let sum = qs.iter().map(|&q| i32::from(q)).sum();
            // The scale is stored as f16 in llama.cpp's Q8_0; rounding it the same way keeps the two equal.
            Q8Block { d: f16::from_f32(d).to_f32(), sum, qs }
        })
        .collect()
}

impl BlockMatrix {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let rows = x.dims2()?.0;
        let out = self.forward_plus(&x.flatten_all()?.to_vec1()?, |_, _| 0.0)?;
        Tensor::from_vec(out, (rows, self.n), &candle_core::Device::Cpu)
    }

    /// `x` (rows, k, row-major) times the transposed weights, plus the bias, plus `extra(column, row)`.
    fn forward_plus(&self, x: &[f32], extra: impl Fn(usize, usize) -> f32 + Sync) -> Result<Vec<f32>> {
        let k = self.k;
        if !x.len().is_multiple_of(k) || !k.is_multiple_of(BLOCK) {
            candle_core::bail!("{:?} matmul: {} inputs for a ({}, {}) matrix", self.format, x.len(), self.n, self.k);
        }
        let activations: Vec<Vec<Q8Block>> = x.chunks_exact(k).map(quantize_row).collect();
        let row_bytes = k / BLOCK * self.format.block_bytes();
        let dot = Kernel::best().dot(self.format);
        Ok(by_columns(activations.len(), self.n, |n, r| {
            let bias = self.bias.as_ref().map_or(0.0, |b| b[n]);
            dot(&self.blocks[n * row_bytes..(n + 1) * row_bytes], &activations[r]) + bias + extra(n, r)
        }))
    }
}

/// The (rows, n) matrix whose cell (r, c) is `cell(c, r)`, row-major. The work runs by columns on candle's own
/// thread pool (a second pool would compete with its spinning workers for the cores): each weight row (a
/// column of the output) is read once, and dotted with every activation row while it is in L1.
fn by_columns(rows: usize, n: usize, cell: impl Fn(usize, usize) -> f32 + Sync) -> Vec<f32> {
    let mut out = vec![0f32; rows * n];
    let out_ptr = out.as_mut_ptr() as usize;
    candle_core::utils::barrier_pool().execute_chunked(n, |columns| {
        for c in columns {
            for r in 0..rows {
                // SAFETY: each (row, column) cell is written by exactly one work item, inside `out`.
                unsafe { *(out_ptr as *mut f32).add(r * n + c) = cell(c, r) };
            }
        }
    });
    out
}

type Dot = fn(&[u8], &[Q8Block]) -> f32;

/// The instruction sets a kernel can use, in order of preference (best last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    Scalar,
    Avx2,
    Vnni,
}

/// The instruction set of the quantized dot products this process uses (`scalar`, `avx2` or `avx512`, after
/// `STUDENTSIM_QUANT_KERNEL`): what a peer is built for to be compared like for like.
pub fn instruction_set() -> &'static str {
    match Kernel::best() {
        Kernel::Scalar => "scalar",
        Kernel::Avx2 => "avx2",
        Kernel::Vnni => "avx512",
    }
}

impl Kernel {
    /// Those this CPU runs, best last.
    fn available() -> Vec<Kernel> {
        let mut kernels = vec![Kernel::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx2") && has!("fma") && has!("f16c") {
                kernels.push(Kernel::Avx2);
                if has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx512vnni") {
                    kernels.push(Kernel::Vnni);
                }
            }
        }
        kernels
    }

    /// The best this CPU runs, or the one `STUDENTSIM_QUANT_KERNEL` (`scalar`, `avx2`, `vnni`) names when the
    /// CPU runs it: how `bench qwen` measures the kernels an older CPU would take.
    fn best() -> Kernel {
        static BEST: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
        *BEST.get_or_init(|| {
            let available = Kernel::available();
            let named = std::env::var("STUDENTSIM_QUANT_KERNEL").ok().and_then(|name| {
                let kernel = available.iter().copied().find(|k| format!("{k:?}").eq_ignore_ascii_case(&name));
                if kernel.is_none() {
                    eprintln!("studentsim: STUDENTSIM_QUANT_KERNEL={name}: not one of {available:?} on this CPU; using the best");
                }
                kernel
            });
            named.unwrap_or(*available.last().unwrap_or(&Kernel::Scalar))
        })
    }

    #[allow(clippy::undocumented_unsafe_blocks)] // one SAFETY comment for every arm, below
    fn dot(self, format: Format) -> Dot {
        // SAFETY (every arm): `available` found the CPU features each kernel is compiled for.
        match (self, format) {
            (Kernel::Scalar, Format::Q5_0) => dot_q5_0_scalar,
            (Kernel::Scalar, Format::Q8_0) => dot_q8_0_scalar,
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx2, Format::Q5_0) => |w, a| unsafe { x86::q5_0_avx2(w, a) },
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx2, Format::Q8_0) => |w, a| unsafe { x86::q8_0_avx2(w, a) },
            #[cfg(target_arch = "x86_64")]
            (Kernel::Vnni, Format::Q5_0) => |w, a| unsafe { x86::q5_0_vnni(w, a) },
            #[cfg(target_arch = "x86_64")]
            (Kernel::Vnni, Format::Q8_0) => |w, a| unsafe { x86::q8_0_vnni(w, a) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => Kernel::Scalar.dot(format),
        }
    }
}

fn scale(block: &[u8]) -> f32 {
    f16::from_le_bytes([block[0], block[1]]).to_f32()
}

/// The values of a Q5_0 block, minus 16.
fn unpack_q5_0(block: &[u8]) -> [i8; BLOCK] {
    let high = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
    let mut q = [0i8; BLOCK];
    for j in 0..BLOCK / 2 {
        let low = block[6 + j];
        q[j] = ((low & 0x0F) | (((high >> j) & 1) << 4) as u8) as i8 - 16;
        q[j + 16] = ((low >> 4) | (((high >> (j + 16)) & 1) << 4) as u8) as i8 - 16;
    }
    q
}

fn dot_blocks(weights: &[u8], activations: &[Q8Block], bytes: usize, values: fn(&[u8]) -> [i8; BLOCK]) -> f32 {
    weights
        .chunks_exact(bytes)
        .zip(activations)
        .map(|(block, a)| {
            let sum: i32 = values(block).iter().zip(&a.qs).map(|(&w, &x)| i32::from(w) * i32::from(x)).sum();
            scale(block) * a.d * sum as f32
        })
        .sum()
}

fn dot_q5_0_scalar(weights: &[u8], activations: &[Q8Block]) -> f32 {
    dot_blocks(weights, activations, Q5_0_BYTES, unpack_q5_0)
}

fn dot_q8_0_scalar(weights: &[u8], activations: &[Q8Block]) -> f32 {
    dot_blocks(weights, activations, Q8_0_BYTES, |block| std::array::from_fn(|i| block[2 + i] as i8))
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::*;

    fn diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    /// Our kernels against candle's matmul of the same blocks and against the dequantized weights in f32, for
    /// both formats; and every kernel this CPU runs (the scalar one is what machines without AVX2 take)
    /// against the scalar one, on rows with an odd number of blocks too.
    #[test]
    fn own_kernels_equal_candle_dequantized_and_each_other() {
        for (dtype, format) in [(GgmlDType::Q5_0, Format::Q5_0), (GgmlDType::Q8_0, Format::Q8_0)] {
            for k in [896, 864] {
                let n = 70;
                let weights = Tensor::randn(0f32, 0.05, (n, k), &Device::Cpu).unwrap();
                let quantize = || QTensor::quantize(&weights, dtype).unwrap();
                let dense = quantize().dequantize(&Device::Cpu).unwrap();
                let x = Tensor::randn(0f32, 1.0, (3, k), &Device::Cpu).unwrap();
                let own = Quantized::new(quantize(), None).unwrap();
                assert!(matches!(&own, Quantized::Own(m) if m.format == format), "{dtype:?} runs on our kernels");
                let ours = own.forward(&x).unwrap();
                let exact = x.matmul(&dense.t().unwrap()).unwrap();
                if (k / BLOCK).is_multiple_of(2) {
                    // candle's kernels take only even numbers of blocks.
                    let candle = QMatMul::from_qtensor(quantize()).unwrap().forward(&x).unwrap();
                    assert!(
                        diff(&ours, &candle) < 1e-3,
                        "{dtype:?}, k {k}: same arithmetic as candle: {}",
                        diff(&ours, &candle)
                    );
                }
                assert!(
                    diff(&ours, &exact) < 0.05,
                    "{dtype:?}, k {k}: close to f32 on the dequantized weights: {}",
                    diff(&ours, &exact)
                );
                let Quantized::Own(m) = own else { unreachable!() };
                let row_bytes = k / BLOCK * format.block_bytes();
                let rows: Vec<Vec<f32>> = x.to_vec2().unwrap();
                let a = quantize_row(&rows[1]);
                for kernel in Kernel::available() {
                    for col in [0, 17, 69] {
                        let w = &m.blocks[col * row_bytes..(col + 1) * row_bytes];
                        let (scalar, fast) = (Kernel::Scalar.dot(format)(w, &a), kernel.dot(format)(w, &a));
                        assert!(
                            (scalar - fast).abs() < 1e-4 * scalar.abs().max(1.0),
                            "{kernel:?} {format:?} k {k}: {fast} vs {scalar}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn fused_layers_put_their_outputs_side_by_side() {
        let (n, k) = (70, 896);
        let weights = Tensor::randn(0f32, 0.05, (n, k), &Device::Cpu).unwrap();
        let x = Tensor::randn(0f32, 1.0, (3, k), &Device::Cpu).unwrap();
        let layer = |bias: Option<&Tensor>| {
            Quantized::new(QTensor::quantize(&weights, GgmlDType::Q5_0).unwrap(), bias).unwrap()
        };
        let alone = layer(None).forward(&x).unwrap();
        let bias = Tensor::arange(0f32, n as f32, &Device::Cpu).unwrap();
        let fused = Quantized::fuse(&[&layer(Some(&bias)), &layer(None)]).unwrap().forward(&x).unwrap();
        assert!(diff(&fused.narrow(1, 0, n).unwrap(), &alone.broadcast_add(&bias).unwrap()) < 1e-3);
        assert!(diff(&fused.narrow(1, n, n).unwrap(), &alone) < 1e-6);
        // Formats do not mix.
        let q8 = Quantized::new(QTensor::quantize(&weights, GgmlDType::Q8_0).unwrap(), None).unwrap();
        assert!(Quantized::fuse(&[&layer(None), &q8]).is_none());
    }
}
