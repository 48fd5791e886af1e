//! What the parity tests share: the scripts' formula weights and inputs
//! (`scripts/parity/make_parity.py`'s `unit` and `formula`) and the
//! comparisons.
#![allow(dead_code)]

const M32: u64 = 0xFFFF_FFFF;

pub fn fnv1a32(s: &str) -> u64 {
    s.bytes()
        .fold(0x811C_9DC5u64, |h, b| ((h ^ b as u64) * 0x0100_0193) & M32)
}

pub fn fmix32(mut h: u64) -> u64 {
    h ^= h >> 16;
    h = (h * 0x85EB_CA6B) & M32;
    h ^= h >> 13;
    h = (h * 0xC2B2_AE35) & M32;
    h ^ (h >> 16)
}

/// `n` values of variance 1 (the script's `unit`).
pub fn unit(seed: u64, n: usize) -> Vec<f64> {
    (0..n as u64)
        .map(|i| {
            let h = fmix32(((i * 0x9E37_79B9) & M32) ^ seed);
            let u = (h >> 8) as f64 / (1u64 << 24) as f64;
            (2.0 * u - 1.0) * 3f64.sqrt()
        })
        .collect()
}

/// The script's `formula(name, shape)`.
pub fn formula(name: &str, shape: &[usize]) -> Vec<f32> {
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

pub fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

/// The script's `unit(seed, n)` as an f32 tensor of `shape`.
pub fn unit_tensor(
    seed: u64,
    shape: &[usize],
    dev: &residual_tensor::Device,
) -> residual_tensor::Tensor {
    let n = shape.iter().product();
    residual_tensor::Tensor::from_vec(
        unit(seed, n).iter().map(|&v| v as f32).collect(),
        shape.to_vec(),
        dev,
    )
    .unwrap()
}

/// Fills every tensor of `m` with the script's `formula`.
pub fn fill_formula(m: &dyn residual_nn::Module, dev: &residual_tensor::Device) {
    for (key, slot) in residual_nn::named_tensors(m) {
        let shape = slot.get().dims().to_vec();
        slot.set(residual_tensor::Tensor::from_vec(formula(&key, &shape), shape, dev).unwrap());
    }
}

/// The ignored full-size checks: each model of `names` loads
/// `target/parity/<name>.safetensors` strictly and, through the inference
/// pass, matches the float64 logits of `target/parity/<name>_io.safetensors`
/// within 1e-4 of their largest magnitude (`script --full` writes both).
pub fn full_size_check(names: &[&str], script: &str) {
    use residual_nn::weights::{load_safetensors, read_tensors};
    use residual_nn::{Mode, Module};
    use residual_zoo::{create, inference, ModelOptions};
    let dev = residual_tensor::Device::cpu();
    let dir = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/parity"));
    for name in names {
        let weights = dir.join(format!("{name}.safetensors"));
        assert!(
            weights.exists(),
            "{} missing: run python3 {script} --full",
            weights.display()
        );
        let m = create(name, &ModelOptions::default(), 0, &dev).unwrap();
        let report = load_safetensors(&*m, &weights, true).unwrap();
        let io = read_tensors(dir.join(format!("{name}_io.safetensors")), &dev).unwrap();
        let fused = inference(&*m).unwrap();
        let got = residual_tensor::no_grad(|| fused.forward(&io["input"], Mode::Eval))
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

/// `make_parity.py`'s small references (`<model>.logits` of resnet18 and
/// resnet50 with formula weights on [`parity_input`]).
pub fn parity_fixtures(
    dev: &residual_tensor::Device,
) -> std::collections::BTreeMap<String, residual_tensor::Tensor> {
    residual_nn::weights::read_tensors(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/parity_small.safetensors"
        ),
        dev,
    )
    .unwrap()
}

/// The input of `make_parity.py`'s small references: `[2, 3, 64, 64]` of
/// [`unit`] values.
pub fn parity_input(dev: &residual_tensor::Device) -> residual_tensor::Tensor {
    let values = unit(12345, 2 * 3 * 64 * 64)
        .iter()
        .map(|&v| v as f32)
        .collect();
    residual_tensor::Tensor::from_vec(values, [2, 3, 64, 64], dev).unwrap()
}

/// `make_hybrid_parity.py`'s references (inputs, outputs, gradients).
pub fn hybrid_fixtures(
    dev: &residual_tensor::Device,
) -> std::collections::BTreeMap<String, residual_tensor::Tensor> {
    residual_nn::weights::read_tensors(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/hybrid_small.safetensors"
        ),
        dev,
    )
    .unwrap()
}

/// `make_hybrid_parity.py`'s `small_model`: the same architecture as this config.
pub fn small_hybrid_config() -> residual_zoo::HybridConfig {
    use residual_zoo::{BackboneConfig, GlobalPool, HybridConfig};
    HybridConfig {
        backbone: BackboneConfig::Resnetv2 {
            layers: vec![1, 1],
            channels: vec![64, 128],
            stem_width: 32,
            groups: 8,
        },
        embed_dim: 48,
        depth: 2,
        num_heads: 3,
        mlp_ratio: 4.0,
        qkv_bias: true,
        img_size: 32,
        in_channels: 3,
        num_classes: 10,
        drop_path_rate: 0.0,
        global_pool: GlobalPool::Token,
    }
}
