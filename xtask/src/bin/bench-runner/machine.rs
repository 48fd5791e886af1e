//! The first line of every bench run: the CPU, the instruction sets it
//! reports and the ones residual's kernels dispatch to on it.

use serde_json::{json, Value};

/// The CPU features that decide which kernels run (residual's, PyTorch's
/// and ONNX Runtime's), in the order they are listed.
#[cfg(target_arch = "x86_64")]
fn features() -> Vec<&'static str> {
    let mut v = Vec::new();
    macro_rules! check {
        ($($f:tt),*) => {$(
            if std::arch::is_x86_feature_detected!($f) {
                v.push($f);
            }
        )*};
    }
    check!(
        "avx",
        "avx2",
        "fma",
        "f16c",
        "avx512f",
        "avx512bw",
        "avx512vl",
        "avx512vnni",
        "avx512bf16",
        "avx512fp16"
    );
    v
}

#[cfg(not(target_arch = "x86_64"))]
fn features() -> Vec<&'static str> {
    Vec::new()
}

/// The CPU's model name from `/proc/cpuinfo` (Linux), or the architecture.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// The `machine` row: CPU model, threads, features, the kernel paths of the
/// CPU backend (`residual_tensor::cpu::kernel_paths`) and the peers' versions.
pub fn row(threads: usize, peers: &str) -> Value {
    let kernels: serde_json::Map<String, Value> = residual_tensor::cpu::kernel_paths()
        .into_iter()
        .map(|(k, p)| (k.to_string(), p.into()))
        .collect();
    json!({
        "case": "machine",
        "cpu": cpu_model(),
        "threads": threads,
        "cpu_features": features(),
        "kernels": kernels,
        "peers": peers,
    })
}
