//! x86-64 dot products of one weight row (the file's blocks) with one Q8_0 activation row.
//!
//! Two generations: AVX2 (with FMA and F16C), and AVX-512 VNNI on 256-bit vectors, whose `vpdpbusd` multiplies
//! and sums bytes in one instruction and whose byte masks expand Q5_0's fifth bits in one more. Both read each
//! Q5_0 value unsigned (0..32) and subtract 16 · Σx once per block, which saves the sign juggling that
//! signed-by-signed bytes need, and both keep two accumulators so consecutive blocks do not wait on one FMA.

use std::arch::x86_64::*;

use super::{BLOCK, Q5_0_BYTES, Q8_0_BYTES, Q8Block};

const _: () = assert!(BLOCK == 32);

/// The sum of a vector's 8 lanes.
#[target_feature(enable = "avx2")]
fn horizontal_sum(v: __m256) -> f32 {
    let half = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let quarter = _mm_add_ps(half, _mm_movehl_ps(half, half));
    _mm_cvtss_f32(_mm_add_ss(quarter, _mm_shuffle_ps(quarter, quarter, 1)))
}

/// The block's f16 scale (its first two bytes) times the activation's, in every lane.
#[target_feature(enable = "avx2,f16c")]
fn scale(block: &[u8], activation: &Q8Block) -> __m256 {
    let bits = u16::from_le_bytes([block[0], block[1]]);
    _mm256_mul_ps(_mm256_cvtph_ps(_mm_set1_epi16(bits as i16)), _mm256_set1_ps(activation.d))
}

/// The 32 low nibbles of a Q5_0 block as bytes: values 0..16 from the low halves, 16..32 from the high ones.
#[target_feature(enable = "avx2")]
fn q5_0_nibbles(block: &[u8]) -> __m256i {
    // SAFETY: a Q5_0 block holds 16 nibble bytes from offset 6.
    let low = unsafe { _mm_loadu_si128(block[6..6 + 16].as_ptr().cast()) };
    _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(low, 4), low), _mm256_set1_epi8(0x0F))
}

#[inline(always)] // a call per block otherwise, at our crate's opt-level 1 in test builds
fn q5_0_high_bits(block: &[u8]) -> u32 {
    u32::from_le_bytes([block[2], block[3], block[4], block[5]])
}

#[target_feature(enable = "avx2")]
fn load_activation(activation: &Q8Block) -> __m256i {
    // SAFETY: 32 bytes.
    unsafe { _mm256_loadu_si256(activation.qs.as_ptr().cast()) }
}

/// −16 · Σx in lane 0: what turns Σ q·x over unsigned q into Σ (q − 16)·x.
#[target_feature(enable = "avx2")]
fn q5_0_offset(activation: &Q8Block) -> __m256i {
    _mm256_setr_epi32(-16 * activation.sum, 0, 0, 0, 0, 0, 0, 0)
}

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

/// Unsigned bytes times signed bytes, summed in fours into i32 lanes, added to `acc` (AVX2 has no single
/// instruction for it; the pairs cannot saturate while the unsigned side stays below 128).
#[target_feature(enable = "avx2")]
fn dot_bytes_avx2(acc: __m256i, unsigned: __m256i, signed: __m256i) -> __m256i {
    let pairs = _mm256_maddubs_epi16(unsigned, signed);
    _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
}

/// Blocks alternate between two accumulators; `|acc, w, a| body` maps (acc, weight block, activation) to the new
/// acc, and the macro writes the body out at each use.
///
/// Written out rather than a closure called in a loop over `chunks_exact().zip()`: our crate builds at opt-level 1
/// without cross-unit inlining in dev and test builds (Cargo.toml), where those stayed calls and the real model's
/// greedy test took 41 s instead of 28.
macro_rules! two_chains {
    ($weights:expr, $activations:expr, $bytes:expr, |$acc:ident, $w:ident, $a:ident| $body:block) => {{
        let (weights, activations): (&[u8], &[Q8Block]) = ($weights, $activations);
        let blocks = activations.len().min(weights.len() / $bytes);
        let (mut even, mut odd) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        while i + 1 < blocks {
            let pair = &weights[i * $bytes..(i + 2) * $bytes];
            even = {
                let ($acc, $w, $a) = (even, &pair[..$bytes], &activations[i]);
                $body
            };
            odd = {
                let ($acc, $w, $a) = (odd, &pair[$bytes..], &activations[i + 1]);
                $body
            };
            i += 2;
        }
        if i < blocks {
            even = {
                let ($acc, $w, $a) = (even, &weights[i * $bytes..(i + 1) * $bytes], &activations[i]);
                $body
            };
        }
        horizontal_sum(_mm256_add_ps(even, odd))
    }};
}

/// # Safety
/// The CPU must have AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn q5_0_avx2(weights: &[u8], activations: &[Q8Block]) -> f32 {
    two_chains!(weights, activations, Q5_0_BYTES, |acc, w, a| {
        let fifth = _mm256_and_si256(bytes_from_bits(q5_0_high_bits(w)), _mm256_set1_epi8(0x10));
        let q = _mm256_or_si256(q5_0_nibbles(w), fifth);
        let sums = dot_bytes_avx2(q5_0_offset(a), q, load_activation(a));
        _mm256_fmadd_ps(scale(w, a), _mm256_cvtepi32_ps(sums), acc)
    })
}

/// # Safety
/// The CPU must have AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn q8_0_avx2(weights: &[u8], activations: &[Q8Block]) -> f32 {
    two_chains!(weights, activations, Q8_0_BYTES, |acc, w, a| {
        // SAFETY: a Q8_0 block holds 32 bytes from offset 2.
        let q = unsafe { _mm256_loadu_si256(w[2..2 + 32].as_ptr().cast()) };
        // Signed by signed: |q| times x with q's sign.
        let sums =
            dot_bytes_avx2(_mm256_setzero_si256(), _mm256_sign_epi8(q, q), _mm256_sign_epi8(load_activation(a), q));
        _mm256_fmadd_ps(scale(w, a), _mm256_cvtepi32_ps(sums), acc)
    })
}

/// # Safety
/// The CPU must have AVX-512 F, BW, VL and VNNI, and FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub unsafe fn q5_0_vnni(weights: &[u8], activations: &[Q8Block]) -> f32 {
    two_chains!(weights, activations, Q5_0_BYTES, |acc, w, a| {
        let nibbles = q5_0_nibbles(w);
        let q = _mm256_mask_add_epi8(nibbles, _cvtu32_mask32(q5_0_high_bits(w)), nibbles, _mm256_set1_epi8(0x10));
        let sums = _mm256_dpbusd_epi32(q5_0_offset(a), q, load_activation(a));
        _mm256_fmadd_ps(scale(w, a), _mm256_cvtepi32_ps(sums), acc)
    })
}

/// # Safety
/// The CPU must have AVX-512 F, BW, VL and VNNI, and FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub unsafe fn q8_0_vnni(weights: &[u8], activations: &[Q8Block]) -> f32 {
    two_chains!(weights, activations, Q8_0_BYTES, |acc, w, a| {
        // SAFETY: a Q8_0 block holds 32 bytes from offset 2.
        let q = unsafe { _mm256_loadu_si256(w[2..2 + 32].as_ptr().cast()) };
        let sums =
            _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(q), _mm256_sign_epi8(load_activation(a), q));
        _mm256_fmadd_ps(scale(w, a), _mm256_cvtepi32_ps(sums), acc)
    })
}

/// # Safety
/// The CPU must have AVX2 and FMA; `w` and `x` have the same length.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn f32_avx2(w: &[f32], x: &[f32]) -> f32 {
    const LANES: usize = 8;
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut w_chunks = w.chunks_exact(4 * LANES);
    let mut x_chunks = x.chunks_exact(4 * LANES);
    for (w, x) in (&mut w_chunks).zip(&mut x_chunks) {
        for (i, acc) in acc.iter_mut().enumerate() {
            // SAFETY: both chunks hold 4 · 8 floats.
            let (a, b) =
                unsafe { (_mm256_loadu_ps(w[i * LANES..].as_ptr()), _mm256_loadu_ps(x[i * LANES..].as_ptr())) };
            *acc = _mm256_fmadd_ps(a, b, *acc);
        }
    }
    let tail: f32 = w_chunks.remainder().iter().zip(x_chunks.remainder()).map(|(a, b)| a * b).sum();
    horizontal_sum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]))) + tail
}

/// # Safety
/// The CPU must have AVX-512 F; `w` and `x` have the same length.
#[target_feature(enable = "avx2,fma,avx512f")]
pub unsafe fn f32_avx512(w: &[f32], x: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut acc = [_mm512_setzero_ps(); 4];
    let mut w_chunks = w.chunks_exact(4 * LANES);
    let mut x_chunks = x.chunks_exact(4 * LANES);
    for (w, x) in (&mut w_chunks).zip(&mut x_chunks) {
        for (i, acc) in acc.iter_mut().enumerate() {
            // SAFETY: both chunks hold 4 · 16 floats.
            let (a, b) =
                unsafe { (_mm512_loadu_ps(w[i * LANES..].as_ptr()), _mm512_loadu_ps(x[i * LANES..].as_ptr())) };
            *acc = _mm512_fmadd_ps(a, b, *acc);
        }
    }
    let tail: f32 = w_chunks.remainder().iter().zip(x_chunks.remainder()).map(|(a, b)| a * b).sum();
    _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]))) + tail
}
