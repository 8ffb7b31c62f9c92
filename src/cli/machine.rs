//! What machine a measurement or a training run was made on.

/// The CPU model and the SIMD flags that matter to the model's kernels (and to bf16 training), from /proc/cpuinfo.
pub fn cpu_description() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim().to_owned()));
    let flags: Vec<&str> = info
        .lines()
        .find_map(|l| l.strip_prefix("flags").and_then(|r| r.split_once(':')).map(|(_, f)| f))
        .map(|f| {
            f.split_whitespace()
                .filter(|f| {
                    [
                        "avx2",
                        "fma",
                        "f16c",
                        "avx512f",
                        "avx512bw",
                        "avx512_vnni",
                        "avx512_bf16",
                        "avx_vnni",
                        "amx_tile",
                        "amx_int8",
                        "amx_bf16",
                    ]
                    .contains(f)
                })
                .collect()
        })
        .unwrap_or_default();
    format!("{} ({})", model.unwrap_or_else(|| "unknown CPU".into()), flags.join(" "))
}
