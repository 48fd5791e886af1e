//! Batch, group and layer norm against finite differences and PyTorch
//! (training and eval batch norm, running statistics).

use crate::assert::check_gradients;
use crate::fixtures::{check, fixture, grads_for, load, BWD, FWD};
use crate::inputs::randn;
use residual_tensor::Device;

/// Norm backward against finite differences.
pub fn norm_finite_differences(dev: &Device) {
    let x = randn(dev, &[3, 4, 2, 3], 31);
    let g = randn(dev, &[4], 32);
    let b = randn(dev, &[4], 33);
    check_gradients(
        "batch_norm train",
        dev,
        vec![x.clone(), g.clone(), b.clone()],
        1e-2,
        |v| Ok(v[0].batch_norm_train(Some(&v[1]), Some(&v[2]), 1e-5)?.y),
    );
    check_gradients(
        "group_norm",
        dev,
        vec![x.clone(), g.clone(), b.clone()],
        1e-2,
        |v| v[0].group_norm(2, Some(&v[1]), Some(&v[2]), 1e-5),
    );
    let g6 = randn(dev, &[2, 3], 34);
    let b6 = randn(dev, &[2, 3], 35);
    check_gradients("layer_norm 2 dims", dev, vec![x, g6, b6], 1e-2, |v| {
        v[0].layer_norm(&[2, 3], Some(&v[1]), Some(&v[2]), 1e-5)
    });
}

/// Training-mode batch norm: output, gradients and the running-stat update.
pub fn torch_batch_norm_train(dev: &Device) {
    let p = |n: &str| format!("batch_norm_train.{n}");
    let x = load(dev, &p("x")).requires_grad_();
    let g = load(dev, &p("gamma")).requires_grad_();
    let b = load(dev, &p("beta")).requires_grad_();
    let out = x.batch_norm_train(Some(&g), Some(&b), 1e-5).unwrap();
    check("bn train y", &out.y, &p("y"), FWD);
    let mut rm = load(dev, &p("running_mean_before"));
    let mut rv = load(dev, &p("running_var_before"));
    out.update_running_stats(&mut rm, &mut rv, 0.1).unwrap();
    check("bn running_mean", &rm, &p("running_mean_after"), 1e-5);
    check(
        "bn running_var (unbiased)",
        &rv,
        &p("running_var_after"),
        1e-5,
    );
    let gr = grads_for(&out.y, &load(dev, &p("dy")), &[&x, &g, &b]);
    check("bn train dx", &gr[0], &p("dx"), BWD);
    check("bn train dgamma", &gr[1], &p("dgamma"), BWD);
    check("bn train dbeta", &gr[2], &p("dbeta"), BWD);
}

/// Eval-mode batch norm with running statistics.
pub fn torch_batch_norm_eval(dev: &Device) {
    let p = |n: &str| format!("batch_norm_eval.{n}");
    let x = load(dev, &p("x")).requires_grad_();
    let g = load(dev, &p("gamma")).requires_grad_();
    let b = load(dev, &p("beta")).requires_grad_();
    let y = x
        .batch_norm_eval(
            &load(dev, &p("running_mean")),
            &load(dev, &p("running_var")),
            Some(&g),
            Some(&b),
            1e-5,
        )
        .unwrap();
    check("bn eval y", &y, &p("y"), FWD);
    let gr = grads_for(&y, &load(dev, &p("dy")), &[&x, &g, &b]);
    check("bn eval dx", &gr[0], &p("dx"), BWD);
    check("bn eval dgamma", &gr[1], &p("dgamma"), BWD);
    check("bn eval dbeta", &gr[2], &p("dbeta"), BWD);
}

/// Group norm forward and backward.
pub fn torch_group_norm(dev: &Device) {
    let p = |n: &str| format!("group_norm.{n}");
    let x = load(dev, &p("x")).requires_grad_();
    let g = load(dev, &p("gamma")).requires_grad_();
    let b = load(dev, &p("beta")).requires_grad_();
    let groups = fixture(&p("groups")).0[0] as usize;
    let y = x.group_norm(groups, Some(&g), Some(&b), 1e-5).unwrap();
    check("group_norm y", &y, &p("y"), FWD);
    let gr = grads_for(&y, &load(dev, &p("dy")), &[&x, &g, &b]);
    check("group_norm dx", &gr[0], &p("dx"), BWD);
    check("group_norm dgamma", &gr[1], &p("dgamma"), BWD);
    check("group_norm dbeta", &gr[2], &p("dbeta"), BWD);
}

/// Layer norm (eps 1e-6, as timm's ViT) forward and backward.
pub fn torch_layer_norm(dev: &Device) {
    let p = |n: &str| format!("layer_norm.{n}");
    let x = load(dev, &p("x")).requires_grad_();
    let g = load(dev, &p("gamma")).requires_grad_();
    let b = load(dev, &p("beta")).requires_grad_();
    let y = x.layer_norm(&[8], Some(&g), Some(&b), 1e-6).unwrap();
    check("layer_norm y", &y, &p("y"), FWD);
    let gr = grads_for(&y, &load(dev, &p("dy")), &[&x, &g, &b]);
    check("layer_norm dx", &gr[0], &p("dx"), BWD);
    check("layer_norm dgamma", &gr[1], &p("dgamma"), BWD);
    check("layer_norm dbeta", &gr[2], &p("dbeta"), BWD);
}
