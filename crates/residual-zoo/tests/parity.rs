//! Parity with PyTorch (`scripts/parity/make_parity.py`).
//!
//! - `formula_weights_match_torchvision`: resnet18 and resnet50 in the full
//!   torchvision layout, every tensor filled by a formula both sides implement;
//!   only PyTorch's logits are committed. Runs in CI.
//! - `full_size_parity` (ignored): all five torchvision models with random
//!   weights and randomised BN statistics, from checkpoints the script writes
//!   to `target/parity/` with `--full`.

use residual_nn::{Mode, Module};
use residual_tensor::{no_grad, Device};
use residual_zoo::{create, inference, ModelOptions};

mod common;

use common::{fill_formula, full_size_check, max_abs, max_diff, parity_fixtures, parity_input};

#[test]
fn formula_weights_match_torchvision() {
    let dev = Device::cpu();
    let refs = parity_fixtures(&dev);
    let x = parity_input(&dev);
    for name in ["resnet18", "resnet50"] {
        let m = create(name, &ModelOptions::classes(10), 0, &dev).unwrap();
        fill_formula(&*m, &dev);
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
    full_size_check(
        &["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"],
        "scripts/parity/make_parity.py",
    );
}
