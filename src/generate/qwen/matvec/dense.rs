//! f32 weights times a few rows, for decoding from Hugging Face folders (and GGUF layers without a quantized
//! kernel of ours), bound by reading the weights at the memory's speed.

use candle_core::{CpuStorage, DType, Device, Result, Storage, Tensor};

use super::{Kernel, by_columns};

type DotF32 = fn(&[f32], &[f32]) -> f32;

fn dot_f32_scalar(w: &[f32], x: &[f32]) -> f32 {
    w.iter().zip(x).map(|(a, b)| a * b).sum()
}

#[allow(clippy::undocumented_unsafe_blocks)] // one SAFETY comment for every arm, below
pub(super) fn dot_f32(kernel: Kernel) -> DotF32 {
    // SAFETY (every arm): `Kernel::available` found the CPU features each kernel is compiled for (VNNI implies
    // AVX-512 F).
    match kernel {
        Kernel::Scalar => dot_f32_scalar,
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => |w, x| unsafe { super::x86::f32_avx2(w, x) },
        #[cfg(target_arch = "x86_64")]
        Kernel::Vnni => |w, x| unsafe { super::x86::f32_avx512(w, x) },
        #[cfg(not(target_arch = "x86_64"))]
        _ => dot_f32_scalar,
    }
}

/// `x` (rows, k) times the transposed (n, k) `weights`, plus `bias` (n): (rows, n). `None` when this is not
/// our case (weights or input not f32 on the CPU), for candle's matmul to do it.
pub fn dense(weights: &Tensor, bias: Option<&Tensor>, x: &Tensor) -> Result<Option<Tensor>> {
    if !matches!(weights.device(), Device::Cpu) || weights.dtype() != DType::F32 || x.dtype() != DType::F32 {
        return Ok(None);
    }
    let (n, k) = weights.dims2()?;
    let (rows, x_k) = x.dims2()?;
    if x_k != k {
        candle_core::bail!("matmul: {x_k} inputs for a ({n}, {k}) matrix");
    }
    let x: Vec<f32> = x.flatten_all()?.to_vec1()?;
    let dot = dot_f32(Kernel::best());
    // Weights and bias are read where they are: this runs for every projection of every decoding step.
    let product = |w: &[f32], bias: Option<&[f32]>| {
        by_columns(rows, n, |c, r| dot(&w[c * k..(c + 1) * k], &x[r * k..(r + 1) * k]) + bias.map_or(0.0, |b| b[c]))
    };
    let out = in_place(weights, |w| match bias {
        Some(b) => in_place(b, |b| product(w, Some(b))),
        None => Some(product(w, None)),
    })
    .flatten();
    out.map(|out| Tensor::from_vec(out, (rows, n), &Device::Cpu)).transpose()
}

/// `f` of the values of `t` without copying them; `None` unless `t` is a contiguous f32 tensor on the CPU.
fn in_place<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
    let (storage, layout) = t.storage_and_layout();
    match (&*storage, layout.contiguous_offsets()) {
        (Storage::Cpu(CpuStorage::F32(data)), Some((start, end))) => Some(f(&data[start..end])),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kernel this CPU runs against candle's matmul, with a bias, on a width that leaves a tail.
    #[test]
    fn dense_rows_equal_candle_matmul() {
        let (n, k) = (37, 900);
        let w = Tensor::randn(0f32, 0.05, (n, k), &Device::Cpu).unwrap();
        let b = Tensor::randn(0f32, 1.0, n, &Device::Cpu).unwrap();
        let x = Tensor::randn(0f32, 1.0, (3, k), &Device::Cpu).unwrap();
        let candle = x.matmul(&w.t().unwrap()).unwrap().broadcast_add(&b).unwrap();
        let ours = dense(&w, Some(&b), &x).unwrap().expect("f32 on the CPU is ours");
        let diff =
            (ours - &candle).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-4, "max |diff| {diff}");
        let (wv, xv): (Vec<f32>, Vec<f32>) =
            (w.flatten_all().unwrap().to_vec1().unwrap(), x.flatten_all().unwrap().to_vec1().unwrap());
        for kernel in Kernel::available() {
            let (scalar, fast) = (dot_f32_scalar(&wv[k..2 * k], &xv[..k]), dot_f32(kernel)(&wv[k..2 * k], &xv[..k]));
            assert!((scalar - fast).abs() < 1e-4, "{kernel:?}: {fast} vs {scalar}");
        }
        // Not ours: bf16 weights go to candle.
        assert!(dense(&w.to_dtype(DType::BF16).unwrap(), None, &x).unwrap().is_none());
    }
}
