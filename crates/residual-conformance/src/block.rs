//! A residual basic block composed of the ops, against PyTorch.

use crate::fixtures::{check, grads_for, load, BWD, FWD};
use residual_tensor::{Conv2dParams, Device, Tensor};

/// A residual basic block assembled from the ops, in training mode:
/// conv3x3(s2)-BN-ReLU-conv3x3-BN + (conv1x1(s2)-BN) shortcut, add, ReLU.
/// Output and every parameter gradient match PyTorch within 1e-4.
pub fn torch_basic_block(dev: &Device) {
    let names = [
        "conv1.weight",
        "bn1.weight",
        "bn1.bias",
        "conv2.weight",
        "bn2.weight",
        "bn2.bias",
        "downsample.0.weight",
        "downsample.1.weight",
        "downsample.1.bias",
    ];
    let params: Vec<Tensor> = names
        .iter()
        .map(|n| load(dev, &format!("block.param.{n}")).requires_grad_())
        .collect();
    let p = |n: &str| &params[names.iter().position(|m| *m == n).unwrap()];
    let x = load(dev, "block.x").requires_grad_();
    let bn = |t: &Tensor, w: &str, b: &str| {
        t.batch_norm_train(Some(p(w)), Some(p(b)), 1e-5)
            .map(|o| o.y)
    };
    let out = x
        .conv2d(p("conv1.weight"), None, Conv2dParams::new(2, 1, 1, 1))
        .unwrap();
    let out = bn(&out, "bn1.weight", "bn1.bias").unwrap().relu().unwrap();
    let out = out
        .conv2d(p("conv2.weight"), None, Conv2dParams::new(1, 1, 1, 1))
        .unwrap();
    let out = bn(&out, "bn2.weight", "bn2.bias").unwrap();
    let short = x
        .conv2d(
            p("downsample.0.weight"),
            None,
            Conv2dParams::new(2, 0, 1, 1),
        )
        .unwrap();
    let short = bn(&short, "downsample.1.weight", "downsample.1.bias").unwrap();
    let y = out.add(&short).unwrap().relu().unwrap();
    check("block y", &y, "block.y", FWD);
    let mut leaves: Vec<&Tensor> = vec![&x];
    leaves.extend(params.iter());
    let g = grads_for(&y, &load(dev, "block.dy"), &leaves);
    check("block dx", &g[0], "block.dx", BWD);
    for (i, n) in names.iter().enumerate() {
        check(
            &format!("block grad {n}"),
            &g[i + 1],
            &format!("block.grad.{n}"),
            BWD,
        );
    }
}
