//! A LoRA adapter on a quantized layer, as a side path: `y = W_q·x + scale · B·(A·x)`, in f32.
//!
//! Merging the adapter into the quantized weights instead (dequantize, add `scale · B·A`, quantize again) would
//! lose it: a trained `scale · B·A` is mostly smaller than half a quantization step, so most weights round back
//! to where they were. The side path keeps the adapter exact for a few rows at a time, at `r·(k + n)`
//! multiply-adds per row against the layer's `n·k`. Both products run on the thread pool; on our own kernels
//! `B·(A·x)` is computed in the same pass as the layer (decoding reads 35 MB of f32 side weights per token, which
//! one thread alone made 18% slower than the plain model).

use candle_core::{Result, Tensor};

use super::{Kernel, by_columns, dense::dot_f32};

/// `scale · B·A` of one layer, A (r, k) and B·scale (n, r), row-major.
#[derive(Clone)]
pub struct LowRank {
    a: Vec<f32>,
    b_scaled: Vec<f32>,
    r: usize,
    k: usize,
    n: usize,
}

impl LowRank {
    pub fn new(a: &Tensor, b: &Tensor, scale: f64) -> Result<Self> {
        let (r, k) = a.dims2()?;
        let (n, b_r) = b.dims2()?;
        if b_r != r {
            candle_core::bail!("lora_B {:?} does not follow lora_A {:?}", b.dims(), a.dims());
        }
        let a = a.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1()?;
        let b_scaled = (b.to_dtype(candle_core::DType::F32)? * scale)?.flatten_all()?.to_vec1()?;
        Ok(Self { a, b_scaled, r, k, n })
    }

    pub fn outputs(&self) -> usize {
        self.n
    }

    /// `A·x` of every row of `x` (rows, k): (rows, r), on the thread pool.
    pub fn project(&self, x: &[f32]) -> Vec<f32> {
        let dot = dot_f32(Kernel::best());
        by_columns(x.len() / self.k, self.r, |j, row| {
            dot(&self.a[j * self.k..(j + 1) * self.k], &x[row * self.k..(row + 1) * self.k])
        })
    }

    /// Output column `c` of the side path for one projected row `ax` (r values).
    pub fn at(&self, c: usize, ax: &[f32]) -> f32 {
        dot_f32(Kernel::best())(&self.b_scaled[c * self.r..(c + 1) * self.r], ax)
    }

    /// Row `row` of a [`Self::project`] result.
    pub fn row<'a>(&self, projected: &'a [f32], row: usize) -> &'a [f32] {
        &projected[row * self.r..(row + 1) * self.r]
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    #[test]
    fn the_side_path_is_scale_b_a_x() {
        let (r, k, n, rows) = (4, 96, 40, 3);
        let a = Tensor::randn(0f32, 0.1, (r, k), &Device::Cpu).unwrap();
        let b = Tensor::randn(0f32, 0.1, (n, r), &Device::Cpu).unwrap();
        let x = Tensor::randn(0f32, 1.0, (rows, k), &Device::Cpu).unwrap();
        let want = (x.matmul(&b.matmul(&a).unwrap().t().unwrap()).unwrap() * 2.0).unwrap();
        let want: Vec<Vec<f32>> = want.to_vec2().unwrap();
        let low_rank = LowRank::new(&a, &b, 2.0).unwrap();
        let projected = low_rank.project(&x.flatten_all().unwrap().to_vec1().unwrap());
        for (row, want) in want.iter().enumerate() {
            for (c, &expected) in want.iter().enumerate() {
                let got = low_rank.at(c, low_rank.row(&projected, row));
                assert!((got - expected).abs() < 1e-4, "row {row} column {c}: {got} vs {expected}");
            }
        }
    }
}
