//! A ResNet-stem ViT hybrid on the wgpu device against the CPU backend:
//! evaluation-mode logits at the trained size and at an odd, non-square size
//! (asymmetric SAME padding, the position embedding resampled), then
//! training-mode logits and every parameter's gradient. The hybrid has no
//! batch statistics (GroupNorm, LayerNorm), so its backward is well
//! conditioned: the backends must agree within 1e-4 of each tensor's
//! largest magnitude.

mod common;

use common::assert_rel;
use residual_nn::{named_tensors, Mode, Module};
use residual_tensor::{no_grad, Device, Tensor};
use residual_zoo::{BackboneConfig, GlobalPool, HybridConfig, Model, ModelConfig};

/// A small hybrid of the timm layout: a two-stage ResNetV2 (GroupNorm of 8)
/// and a 2-block, 32-wide ViT with 2 heads, laid out for 32x32 inputs.
fn small() -> ModelConfig {
    ModelConfig::Hybrid(HybridConfig {
        backbone: BackboneConfig::Resnetv2 {
            layers: vec![1, 1],
            channels: vec![32, 64],
            stem_width: 16,
            groups: 8,
        },
        embed_dim: 32,
        depth: 2,
        num_heads: 2,
        mlp_ratio: 2.0,
        qkv_bias: true,
        img_size: 32,
        in_channels: 3,
        num_classes: 5,
        drop_path_rate: 0.0,
        global_pool: GlobalPool::Token,
    })
}

fn pair(gpu: &Device) -> (Box<dyn Model>, Box<dyn Model>) {
    (
        small().build(3, &Device::cpu()).unwrap(),
        small().build(3, gpu).unwrap(),
    )
}

#[test]
fn hybrid_matches_the_cpu_forward_and_backward() {
    let Some(gpu) = residual_wgpu::test_device() else {
        return;
    };
    let (cpu_model, gpu_model) = pair(&gpu);
    for (what, shape) in [("32x32", [2, 3, 32, 32]), ("odd 29x37", [1, 3, 29, 37])] {
        let x = Tensor::randn(shape, 0.0, 1.0, 17, &Device::cpu()).unwrap();
        let want = no_grad(|| cpu_model.forward(&x, Mode::Eval)).unwrap();
        let got = no_grad(|| gpu_model.forward(&x.to_device(&gpu).unwrap(), Mode::Eval)).unwrap();
        assert_rel(
            &format!("eval logits {what}"),
            &got.to_vec().unwrap(),
            &want.to_vec().unwrap(),
            1e-4,
        );
    }

    let x = Tensor::randn([2, 3, 32, 32], 0.0, 1.0, 23, &Device::cpu()).unwrap();
    let loss = |m: &dyn Model, x: &Tensor| {
        let y = m.forward(x, Mode::Train).unwrap();
        let l = y.cross_entropy(&[1, 4], 0.0).unwrap();
        (y, l)
    };
    let (yc, lc) = loss(&*cpu_model, &x);
    let (yg, lg) = loss(&*gpu_model, &x.to_device(&gpu).unwrap());
    assert_rel(
        "train logits",
        &yg.to_vec().unwrap(),
        &yc.to_vec().unwrap(),
        1e-4,
    );
    let (gc, gg) = (lc.backward().unwrap(), lg.backward().unwrap());
    let mut checked = 0;
    for ((n, a), (_, b)) in named_tensors(&*cpu_model)
        .iter()
        .zip(&named_tensors(&*gpu_model))
    {
        let want = gc.get(&a.get()).unwrap().to_vec().unwrap();
        let got = gg
            .get(&b.get())
            .unwrap_or_else(|| panic!("no gradient for {n} on wgpu"))
            .to_vec()
            .unwrap();
        assert_rel(&format!("grad {n}"), &got, &want, 1e-4);
        checked += 1;
    }
    assert!(checked > 40, "only {checked} gradients compared");
}
