//! Vectors recorded from candle-transformers' implementation of each encoder (in `tests/fixtures/reference/`),
//! which the default test run compares ours with. The reference tests (`cargo test --features reference-models`)
//! compare ours with candle-transformers itself and check the recording against it; with
//! `STUDENTSIM_RECORD_REFERENCE=1` they write the recording instead.

use std::path::PathBuf;

/// Ours may differ from the recording by this much in any coordinate of a unit vector: what separate
/// summation orders leave (below 1e-5 here), far below what a wrong layer gives.
pub const TOLERANCE: f32 = 1e-4;

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/reference/{name}.json"))
}

/// Panics unless `ours` is within [`TOLERANCE`] of the recording `name`, coordinate by coordinate.
pub fn assert_close(name: &str, ours: &[Vec<f32>]) {
    let path = path(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let recorded: Vec<Vec<f32>> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(recorded.len(), ours.len(), "{name}: vectors");
    for (i, (a, b)) in ours.iter().zip(&recorded).enumerate() {
        assert_eq!(a.len(), b.len(), "{name}: vector {i}'s length");
        let largest = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(largest < TOLERANCE, "{name}: vector {i} differs from the recording by up to {largest}");
    }
}

/// Panics unless hidden states `ours` and `theirs` (batch, tokens, hidden) agree within 1e-4 on the real tokens of
/// `mask` (batch, tokens); padding positions may differ.
#[cfg(feature = "reference-models")]
pub fn assert_close_on_real_tokens(
    ours: &candle_core::Tensor,
    theirs: &candle_core::Tensor,
    mask: &candle_core::Tensor,
) {
    let real = mask.to_dtype(candle_core::DType::F32).unwrap().unsqueeze(2).unwrap();
    let diff = (ours - theirs).unwrap().abs().unwrap().broadcast_mul(&real).unwrap();
    let largest = diff.flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
    assert!(largest < 1e-4, "largest difference on real tokens {largest}");
}

/// Write `theirs` as the recording `name` under `STUDENTSIM_RECORD_REFERENCE=1`, else check the recording.
#[cfg(feature = "reference-models")]
pub fn record_or_check(name: &str, theirs: &[Vec<f32>]) {
    if std::env::var_os("STUDENTSIM_RECORD_REFERENCE").is_some_and(|v| v == "1") {
        std::fs::write(path(name), serde_json::to_string(theirs).expect("floats serialize") + "\n")
            .expect("the fixtures folder is writable");
    } else {
        assert_close(name, theirs);
    }
}
