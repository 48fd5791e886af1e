//! Whole ResNets on the wgpu device against the CPU backend: forward in
//! evaluation and training mode, every parameter gradient, batch-norm running
//! statistics, and the loss over a few SGD steps.
//!
//! Conditioning decides which comparisons can be tight. With batch
//! statistics over very few values (batch 2 at 32x32 leaves ResNet layer4 at
//! 1x1, two values per channel) the training-mode backward is chaotic: on the
//! CPU alone, moving the input by one ulp changes ResNet-50's gradients by
//! about 2% (and ResNet-18's at 32x32 by 15%). No two implementations can agree
//! to 1e-3 there (the training-mode logits themselves differ at 32x32). So
//! both nets run at 2x3x64x64: ResNet-18 checks the training-mode backward
//! (well conditioned there; the backends agree to about 1e-5), ResNet-50,
//! still chaotic in training mode at that size, checks its training-mode
//! forward, its running statistics and its full backward with running
//! statistics (eval-mode batch norm). Inputs are
//! fixed seeds whose max-pool windows have no near-ties: a tie within rounding
//! error sends a window's gradient to a different element, as finite
//! differences must also stay away from kinks.
//!
//! The CPU side runs its f32 convolutions as im2col + GEMM
//! (`set_winograd(false)`), whose rounding is close to the wgpu kernels'
//! direct sums. Even the eval-mode backward of ResNet-50 at 64x64 hangs on
//! ReLU masks and batch-norm sums over 32 values: on the CPU alone, input
//! noise of 5e-6 relative moves its gradients by up to 26%, and Winograd's
//! per-layer rounding (5e-6 of a layer's largest output, inside the zoo's
//! 1e-4 parity bound and tested against float64 in `cpu::winograd`) moves
//! them by up to 3%, where the wgpu and im2col paths agree to 3e-5.

mod common;

use common::assert_rel;
use residual_nn::{named_tensors, Mode, Module};
use residual_tensor::{no_grad, Device, Tensor};
use residual_train::optim::{Optimizer, OptimizerConfig};
use residual_zoo::{create, Model, ModelOptions};

/// The model `name` on the CPU (convolutions on im2col + GEMM, see the module
/// doc) and on `gpu`, with the same weights.
fn pair(name: &str, gpu: &Device) -> (Box<dyn Model>, Box<dyn Model>) {
    residual_tensor::cpu::set_winograd(false);
    let opts = ModelOptions::classes(10);
    (
        create(name, &opts, 11, &Device::cpu()).unwrap(),
        create(name, &opts, 11, gpu).unwrap(),
    )
}

fn input(gpu: &Device, hw: usize, seed: u64) -> (Tensor, Tensor) {
    let x = Tensor::randn([2, 3, hw, hw], 0.0, 1.0, seed, &Device::cpu()).unwrap();
    let xg = x.to_device(gpu).unwrap();
    (x, xg)
}

const TARGETS: [usize; 2] = [3, 7];

fn forward_and_backward_match(name: &str, hw: usize, seed: u64, backward_mode: Mode) {
    let Some(gpu) = residual_wgpu::test_device() else {
        return;
    };
    let (cpu_model, gpu_model) = pair(name, &gpu);
    let (x, xg) = input(&gpu, hw, seed);

    // Evaluation mode (batch norm folded into the convolutions under no_grad).
    let want = no_grad(|| cpu_model.forward(&x, Mode::Eval)).unwrap();
    let got = no_grad(|| gpu_model.forward(&xg, Mode::Eval)).unwrap();
    assert_rel(
        &format!("{name} eval logits"),
        &got.to_vec().unwrap(),
        &want.to_vec().unwrap(),
        1e-3,
    );

    // Training mode: logits and loss, then every gradient (in `backward_mode`)
    // and the running statistics.
    let logits_c = cpu_model.forward(&x, Mode::Train).unwrap();
    let logits_g = gpu_model.forward(&xg, Mode::Train).unwrap();
    assert_rel(
        &format!("{name} train logits"),
        &logits_g.to_vec().unwrap(),
        &logits_c.to_vec().unwrap(),
        1e-3,
    );
    let (loss_c, loss_g) = if backward_mode == Mode::Train {
        (logits_c, logits_g)
    } else {
        (
            cpu_model.forward(&x, backward_mode).unwrap(),
            gpu_model.forward(&xg, backward_mode).unwrap(),
        )
    };
    let loss_c = loss_c.cross_entropy(&TARGETS, 0.0).unwrap();
    let loss_g = loss_g.cross_entropy(&TARGETS, 0.0).unwrap();
    assert_rel(
        &format!("{name} loss"),
        &loss_g.to_vec().unwrap(),
        &loss_c.to_vec().unwrap(),
        1e-3,
    );
    let grads_c = loss_c.backward().unwrap();
    let grads_g = loss_g.backward().unwrap();
    let (pc, pg) = (named_tensors(&*cpu_model), named_tensors(&*gpu_model));
    let mut checked = 0;
    for ((n, a), (_, b)) in pc.iter().zip(&pg) {
        if a.is_trainable() {
            let want = grads_c.get(&a.get()).unwrap().to_vec().unwrap();
            let got = grads_g
                .get(&b.get())
                .unwrap_or_else(|| panic!("{name}: no gradient for {n} on wgpu"))
                .to_vec()
                .unwrap();
            assert_rel(&format!("{name} grad {n}"), &got, &want, 1e-3);
            checked += 1;
        } else if n.ends_with("running_mean") || n.ends_with("running_var") {
            assert_rel(
                &format!("{name} {n}"),
                &b.get().to_vec().unwrap(),
                &a.get().to_vec().unwrap(),
                1e-3,
            );
        }
    }
    assert!(checked > 50, "{name}: only {checked} gradients compared");
}

#[test]
fn resnet18_matches_the_cpu_forward_and_backward() {
    forward_and_backward_match("resnet18", 64, 5, Mode::Train);
}

#[test]
fn resnet50_matches_the_cpu_forward_and_backward() {
    forward_and_backward_match("resnet50", 64, 1, Mode::Eval);
}

#[test]
fn sgd_steps_give_the_cpu_loss_trajectory() {
    let Some(gpu) = residual_wgpu::test_device() else {
        return;
    };
    let (cpu_model, gpu_model) = pair("resnet18", &gpu);
    let (x, xg) = input(&gpu, 64, 5);
    let mut opt_c = Optimizer::new(
        OptimizerConfig::sgd_momentum(),
        named_tensors(&*cpu_model),
        true,
    );
    let mut opt_g = Optimizer::new(
        OptimizerConfig::sgd_momentum(),
        named_tensors(&*gpu_model),
        true,
    );
    let (mut lc, mut lg) = (Vec::new(), Vec::new());
    for _ in 0..4 {
        for (model, opt, x, losses) in [
            (&cpu_model, &mut opt_c, &x, &mut lc),
            (&gpu_model, &mut opt_g, &xg, &mut lg),
        ] {
            let loss = model
                .forward(x, Mode::Train)
                .unwrap()
                .cross_entropy(&TARGETS, 0.0)
                .unwrap();
            losses.push(loss.to_scalar().unwrap());
            let grads = loss.backward().unwrap();
            opt.step(&grads, 0.01).unwrap();
        }
    }
    assert!(lc[3] < lc[0], "the CPU run learns: {lc:?}");
    assert_rel("loss trajectory", &lg, &lc, 1e-3);
}
