//! A LoRA adapter on a quantized layer, as a side path: `y = W_q·x + scale · B·(A·x)`, in f32.
//!
//! Merging the adapter into the quantized weights instead (dequantize, add `scale · B·A`, quantize again) would
//! lose it: a trained `scale · B·A` is mostly smaller than half a quantization step, so most weights round back
//! to where they were. The side path keeps the adapter exact for a few rows at a time, at `r·(k + n)`
//! multiply-adds per row against the layer's `n·k`.

use candle_core::{Result, Tensor};

use super::{Kernel, dense::dot_f32};

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

    /// Add the side path of every row of `x` (rows, k) to columns `offset..offset + n` of `out` (rows, width).
    pub fn add_to(&self, x: &[f32], out: &mut [f32], offset: usize, width: usize) {
        let dot = dot_f32(Kernel::best());
        let mut ax = vec![0f32; self.r];
        for (row, x) in x.chunks_exact(self.k).enumerate() {
            for (j, t) in ax.iter_mut().enumerate() {
                *t = dot(&self.a[j * self.k..(j + 1) * self.k], x);
            }
            let out = &mut out[row * width + offset..row * width + offset + self.n];
            for (c, y) in out.iter_mut().enumerate() {
                *y += dot(&self.b_scaled[c * self.r..(c + 1) * self.r], &ax);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    #[test]
    fn the_side_path_adds_scale_b_a_x() {
        let (r, k, n, rows, width, offset) = (4, 96, 40, 3, 50, 7);
        let a = Tensor::randn(0f32, 0.1, (r, k), &Device::Cpu).unwrap();
        let b = Tensor::randn(0f32, 0.1, (n, r), &Device::Cpu).unwrap();
        let x = Tensor::randn(0f32, 1.0, (rows, k), &Device::Cpu).unwrap();
        let want = (x.matmul(&b.matmul(&a).unwrap().t().unwrap()).unwrap() * 2.0).unwrap();
        let want: Vec<Vec<f32>> = want.to_vec2().unwrap();
        let mut out = vec![1f32; rows * width];
        LowRank::new(&a, &b, 2.0).unwrap().add_to(&x.flatten_all().unwrap().to_vec1().unwrap(), &mut out, offset, width);
        for row in 0..rows {
            for c in 0..width {
                let got = out[row * width + c];
                let expected = if (offset..offset + n).contains(&c) { 1.0 + want[row][c - offset] } else { 1.0 };
                assert!((got - expected).abs() < 1e-4, "row {row} column {c}: {got} vs {expected}");
            }
        }
    }
}
