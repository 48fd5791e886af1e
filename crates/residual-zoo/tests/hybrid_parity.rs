//! Parity of the ViT hybrids with timm (`scripts/parity/make_hybrid_parity.py`).
//!
//! - `small_hybrid_matches_timm`: a reduced hybrid of timm's own classes
//!   (ResNetV2 with std-conv, SAME padding and GroupNorm, HybridEmbed, ViT
//!   blocks) with formula weights: evaluation-mode logits, logits at an odd,
//!   non-square size (asymmetric SAME padding, the position embedding
//!   resampled), logits with average pooling (timm's `global_pool="avg"`),
//!   and training-mode logits and every parameter's gradient.
//!   Runs in CI; only timm's outputs and gradients are committed.
//! - `full_size_hybrid_parity` (ignored): the four registered timm hybrids
//!   with timm's random init and randomised norms, from checkpoints the
//!   script writes to `target/parity/` with `--full`.

mod common;

use common::{
    fill_formula, full_size_check, hybrid_fixtures as fixtures, max_abs, max_diff,
    small_hybrid_config as small_config,
};
use residual_nn::{named_tensors, parameter_count, Mode, Module};
use residual_tensor::{no_grad, Device, Tensor};
use residual_zoo::{create, GlobalPool, HybridConfig, ModelConfig, ModelOptions};

/// Asserts `got` within `1e-4 * max |want|` of `want`, naming `what`.
fn assert_close(what: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let (g, w) = (got.to_vec().unwrap(), want.to_vec().unwrap());
    let (d, scale) = (max_diff(&g, &w), max_abs(&w));
    println!("{what}: max |diff| {d:.3e}, max |ref| {scale:.3e}");
    assert!(
        d <= 1e-4 * scale,
        "{what}: max |diff| {d:.3e} exceeds 1e-4 * max |ref| {scale:.3e}"
    );
}

#[test]
fn small_hybrid_matches_timm() {
    let dev = Device::cpu();
    let refs = fixtures(&dev);
    let m = ModelConfig::Hybrid(small_config()).build(0, &dev).unwrap();
    fill_formula(&*m, &dev);
    // Every timm parameter has a gradient in the fixture, and only those.
    let ours: Vec<String> = named_tensors(&*m).into_iter().map(|(n, _)| n).collect();
    let theirs: Vec<String> = refs
        .keys()
        .filter_map(|k| k.strip_prefix("grad.").map(str::to_string))
        .collect();
    let mut sorted = ours.clone();
    sorted.sort();
    assert_eq!(sorted, theirs, "parameter names differ from timm's");

    for case in ["eval", "resized"] {
        let y = no_grad(|| m.forward(&refs[&format!("{case}.input")], Mode::Eval)).unwrap();
        assert_close(case, &y, &refs[&format!("{case}.output")]);
    }

    // timm's global_pool="avg": the mean of the patch tokens through `fc_norm`.
    let avg = ModelConfig::Hybrid(HybridConfig {
        global_pool: GlobalPool::Avg,
        ..small_config()
    })
    .build(0, &dev)
    .unwrap();
    fill_formula(&*avg, &dev);
    assert!(named_tensors(&*avg)
        .iter()
        .any(|(n, _)| n == "fc_norm.weight"));
    let y = no_grad(|| avg.forward(&refs["avg.input"], Mode::Eval)).unwrap();
    assert_close("avg", &y, &refs["avg.output"]);

    let y = m.forward(&refs["train.input"], Mode::Train).unwrap();
    assert_close("train", &y, &refs["train.output"]);
    let grads = y
        .mul(&refs["train.cotangent"])
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    for (name, slot) in named_tensors(&*m) {
        let g = grads
            .get(&slot.get())
            .unwrap_or_else(|| panic!("{name}: no gradient"));
        assert_close(
            &format!("grad of {name}"),
            g,
            &refs[&format!("grad.{name}")],
        );
    }
}

#[test]
fn registered_hybrids_have_timms_parameter_counts() {
    let dev = Device::cpu();
    for (name, count) in [
        ("vit_small_r26_s32_224", 36_431_912),
        ("vit_small_r26_s32_384", 36_468_392),
        ("vit_base_r50_s16_224", 98_659_112),
        ("vit_base_r50_s16_384", 98_950_952),
    ] {
        let m = create(name, &ModelOptions::default(), 0, &dev).unwrap();
        assert_eq!(parameter_count(&*m), count, "{name}");
    }
}

#[test]
#[ignore = "needs target/parity/ from `python3 scripts/parity/make_hybrid_parity.py --full`"]
fn full_size_hybrid_parity() {
    full_size_check(
        &[
            "vit_small_r26_s32_224",
            "vit_small_r26_s32_384",
            "vit_base_r50_s16_224",
            "vit_base_r50_s16_384",
        ],
        "scripts/parity/make_hybrid_parity.py",
    );
}

#[test]
fn hybrid_summaries() {
    let dev = Device::cpu();
    for (name, size) in [("vit_small_r26_s32_224", 224), ("vit_digits_r20", 28)] {
        let m = create(name, &ModelOptions::default(), 0, &dev).unwrap();
        let s = m.summary(name, [3, size, size]).unwrap();
        assert_eq!(
            s.total_params(),
            parameter_count(&*m),
            "{name}: every parameter in a row"
        );
        insta::assert_snapshot!(format!("summary_{name}"), s.to_string());
    }
}
