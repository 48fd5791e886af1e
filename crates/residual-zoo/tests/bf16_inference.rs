//! The bf16 inference path (`inference_at(model, Precision::Bf16)`) on the
//! parity cases: how far its logits move from PyTorch's f32 logits, and
//! whether its top-1 classes stay PyTorch's.
//!
//! bf16 keeps 8 significant bits: each rounding moves a value by at most
//! 2^-9 of it. The weights and the convolutions' inputs and outputs are
//! rounded (accumulation is f32), dozens of times along a ResNet-50, and the
//! errors add up as a random walk, so the logits move by about 1% of their
//! largest magnitude; the bound below is 4% of it (one bf16 unit, 2^-8, per
//! ~10 layers in the worst case of errors that all point the same way on a
//! 50-layer network), far from f32's 1e-4 and from a broken kernel's O(1).

mod common;

use common::{
    fill_formula, hybrid_fixtures, max_abs, max_diff, parity_fixtures, parity_input,
    small_hybrid_config,
};
use residual_nn::{Mode, Module};
use residual_tensor::{autocast, no_grad, DType, Device, Tensor};
use residual_zoo::{create, inference_at, ModelConfig, ModelOptions, Precision};

/// The largest logit difference allowed, as a share of the largest |logit|.
const BF16_LOGIT_SHARE: f32 = 0.04;

/// Checks bf16 logits against PyTorch's f32 ones, printing the figures.
fn check(what: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.dtype(), DType::F32, "{what}: logits are f32");
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let (g, w) = (got.to_vec().unwrap(), want.to_vec().unwrap());
    assert!(g.iter().all(|v| v.is_finite()), "{what}: non-finite logits");
    let (d, scale) = (max_diff(&g, &w), max_abs(&w));
    let classes = want.dims()[1];
    let top = |v: &[f32]| -> Vec<usize> {
        v.chunks(classes)
            .map(|r| (0..classes).max_by(|&a, &b| r[a].total_cmp(&r[b])).unwrap())
            .collect()
    };
    let (tg, tw) = (top(&g), top(&w));
    let agree = tg.iter().zip(&tw).filter(|(a, b)| a == b).count();
    println!(
        "{what} bf16: max |diff| {d:.3e} = {:.2}% of max |ref| {scale:.3e}; top-1 agrees on {agree} of {}",
        100.0 * d / scale,
        tw.len()
    );
    assert!(
        d <= BF16_LOGIT_SHARE * scale,
        "{what}: bf16 logits differ by {d:.3e}, more than {BF16_LOGIT_SHARE} of max |ref| {scale:.3e}"
    );
    // The f32 passes are within 1e-4 of the reference (tests/parity.rs):
    // a difference this small would mean no bf16 rounding took place.
    assert!(
        d > 1e-3 * scale,
        "{what}: bf16 logits within {d:.3e} of f32's: the pass did not compute in bf16"
    );
}

#[test]
fn bf16_resnets_stay_near_torchvision() {
    let dev = Device::cpu();
    let refs = parity_fixtures(&dev);
    let x = parity_input(&dev);
    for name in ["resnet18", "resnet50"] {
        let m = create(name, &ModelOptions::classes(10), 0, &dev).unwrap();
        fill_formula(&*m, &dev);
        let bf16 = inference_at(&*m, Precision::Bf16).unwrap();
        assert!(bf16.is_fused(), "{name}: batch norm folds at bf16 too");
        let y = no_grad(|| bf16.forward(&x, Mode::Eval)).unwrap();
        check(name, &y, &refs[&format!("{name}.logits")]);
    }
}

/// The parity script's small hybrid (GroupNorm, std-conv, ViT blocks): no
/// rewrite, so bf16 runs the model under autocast with its weights' bf16
/// copies made once.
#[test]
fn bf16_hybrid_stays_near_timm_and_equals_autocast() {
    let dev = Device::cpu();
    let refs = hybrid_fixtures(&dev);
    let m = ModelConfig::Hybrid(small_hybrid_config())
        .build(0, &dev)
        .unwrap();
    fill_formula(&*m, &dev);
    let bf16 = inference_at(&*m, Precision::Bf16).unwrap();
    assert!(!bf16.is_fused());
    for case in ["eval", "resized"] {
        let x = &refs[&format!("{case}.input")];
        let y = no_grad(|| bf16.forward(x, Mode::Eval)).unwrap();
        check(case, &y, &refs[&format!("{case}.output")]);
        // The copies made once are the casts autocast makes at each call.
        let per_call = no_grad(|| autocast(DType::BF16, || m.forward(x, Mode::Eval)))
            .unwrap()
            .unwrap()
            .cast(DType::F32)
            .unwrap();
        assert_eq!(y.to_vec().unwrap(), per_call.to_vec().unwrap(), "{case}");
    }
}
