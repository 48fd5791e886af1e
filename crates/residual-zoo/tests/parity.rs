//! Parity with PyTorch (`scripts/parity/make_parity.py`).
//!
//! - `formula_weights_match_torchvision`: resnet18 and resnet50 in the full
//!   torchvision layout, every tensor filled by a formula both sides implement;
//!   only PyTorch's logits are committed. Runs in CI.
//! - `full_size_parity` (ignored): all five torchvision models with random
//!   weights and randomised BN statistics, from checkpoints the script writes
//!   to `target/parity/` with `--full`.

use residual_nn::weights::{load_safetensors, read_tensors};
use residual_nn::{named_tensors, Mode, Module};
use residual_tensor::{no_grad, Device, Tensor};
use residual_zoo::{create, inference, ModelOptions};
use std::path::PathBuf;

const M32: u64 = 0xFFFF_FFFF;

fn fnv1a32(s: &str) -> u64 {
    s.bytes()
        .fold(0x811C_9DC5u64, |h, b| ((h ^ b as u64) * 0x0100_0193) & M32)
}

fn fmix32(mut h: u64) -> u64 {
    h ^= h >> 16;
    h = (h * 0x85EB_CA6B) & M32;
    h ^= h >> 13;
    h = (h * 0xC2B2_AE35) & M32;
    h ^ (h >> 16)
}

/// `n` values of variance 1 (the script's `unit`).
fn unit(seed: u64, n: usize) -> Vec<f64> {
    (0..n as u64)
        .map(|i| {
            let h = fmix32(((i * 0x9E37_79B9) & M32) ^ seed);
            let u = (h >> 8) as f64 / (1u64 << 24) as f64;
            (2.0 * u - 1.0) * 3f64.sqrt()
        })
        .collect()
}

/// The script's `formula(name, shape)`.
fn formula(name: &str, shape: &[usize]) -> Vec<f32> {
    let n = shape.iter().product();
    let s = unit(fnv1a32(name), n);
    let f = |g: &dyn Fn(f64) -> f64| s.iter().map(|&v| g(v) as f32).collect();
    if name.ends_with("num_batches_tracked") {
        vec![0.0; n]
    } else if name.ends_with("running_var") {
        f(&|v| 1.0 + 0.25 * v)
    } else if name.ends_with("running_mean") || name.ends_with("bias") {
        f(&|v| 0.1 * v)
    } else if shape.len() == 1 {
        f(&|v| 1.0 + 0.1 * v)
    } else {
        let fan_in: usize = shape[1..].iter().product();
        let k = (2.0 / fan_in as f64).sqrt();
        f(&|v| k * v)
    }
}

fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn formula_weights_match_torchvision() {
    let dev = Device::cpu();
    let refs = read_tensors(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/parity_small.safetensors"
        ),
        &dev,
    )
    .unwrap();
    let x = Tensor::from_vec(
        unit(12345, 2 * 3 * 64 * 64)
            .iter()
            .map(|&v| v as f32)
            .collect(),
        [2, 3, 64, 64],
        &dev,
    )
    .unwrap();
    for name in ["resnet18", "resnet50"] {
        let m = create(name, &ModelOptions::classes(10), 0, &dev).unwrap();
        for (key, slot) in named_tensors(&*m) {
            let shape = slot.get().dims().to_vec();
            slot.set(Tensor::from_vec(formula(&key, &shape), shape, &dev).unwrap());
        }
        let want = refs[&format!("{name}.logits")].to_vec().unwrap();
        // The model's own forward and the inference pass (folded batch norm,
        // fused epilogues) both match PyTorch.
        let fused = inference(&*m).unwrap();
        assert!(
            fused.is_fused(),
            "{name}: the inference pass folds batch norm"
        );
        for (path, runner) in [("forward", &*m as &dyn Module), ("inference", &fused)] {
            let got = no_grad(|| runner.forward(&x, Mode::Eval))
                .unwrap()
                .to_vec()
                .unwrap();
            let (d, scale) = (max_diff(&got, &want), max_abs(&want));
            println!("{name} {path}: max |diff| {d:.3e}, max |ref| {scale:.3e}");
            assert!(
                d <= 1e-4 * scale,
                "{name} {path}: max |diff| {d} exceeds 1e-4 * max |ref| {scale}"
            );
        }
    }
}

#[test]
#[ignore = "needs target/parity/ from `python3 scripts/parity/make_parity.py --full`"]
fn full_size_parity() {
    let dev = Device::cpu();
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/parity"));
    for name in ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"] {
        let weights = dir.join(format!("{name}.safetensors"));
        assert!(
            weights.exists(),
            "{} missing: run python3 scripts/parity/make_parity.py --full",
            weights.display()
        );
        let m = create(name, &ModelOptions::default(), 0, &dev).unwrap();
        let report = load_safetensors(&*m, &weights, true).unwrap();
        let io = read_tensors(dir.join(format!("{name}_io.safetensors")), &dev).unwrap();
        let fused = inference(&*m).unwrap();
        let got = no_grad(|| fused.forward(&io["input"], Mode::Eval))
            .unwrap()
            .to_vec()
            .unwrap();
        let want = io["output"].to_vec().unwrap();
        let (d, scale) = (max_diff(&got, &want), max_abs(&want));
        println!(
            "{name}: {} tensors loaded, max |diff| {d:.3e}, max |ref| {scale:.3e}, ratio {:.2e}",
            report.loaded.len(),
            d / scale
        );
        assert!(
            d <= 1e-4 * scale,
            "{name}: max |diff| {d} exceeds 1e-4 * max |ref| {scale}"
        );
    }
}
