//! Checks against PyTorch fixtures (`scripts/fixtures/make_fixtures.py`).

use super::assert_close;
use crate::{Conv2dParams, Device, Pool2dParams, Tensor};
use safetensors::SafeTensors;
use std::sync::OnceLock;

static FIXTURES: &[u8] = include_bytes!("../../fixtures/torch_ops.safetensors");

/// Forward tolerance (relative to the largest reference magnitude).
const FWD: f32 = 1e-4;
/// Backward tolerance.
const BWD: f32 = 1e-4;

fn fixtures() -> &'static SafeTensors<'static> {
    static F: OnceLock<SafeTensors<'static>> = OnceLock::new();
    F.get_or_init(|| {
        SafeTensors::deserialize(FIXTURES)
            .expect("torch_ops.safetensors is corrupt: rerun the fixture script")
    })
}

/// Values and shape of fixture tensor `name`.
pub fn fixture(name: &str) -> (Vec<f32>, Vec<usize>) {
    let v = fixtures()
        .tensor(name)
        .unwrap_or_else(|e| panic!("fixture {name}: {e}"));
    let data = v
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (data, v.shape().to_vec())
}

/// Fixture tensor `name` on `dev`.
pub fn load(dev: &Device, name: &str) -> Tensor {
    let (v, s) = fixture(name);
    Tensor::from_vec(v, s, dev).unwrap()
}

fn check(what: &str, got: &Tensor, fixture_name: &str, tol: f32) {
    let (want, shape) = fixture(fixture_name);
    assert_eq!(got.dims(), shape.as_slice(), "{what}: shape");
    assert_close(what, &got.to_vec().unwrap(), &want, tol);
}

/// Gradients of `sum(y * dy)` for the given leaves.
fn grads_for(y: &Tensor, dy: &Tensor, leaves: &[&Tensor]) -> Vec<Tensor> {
    let g = y.mul(dy).unwrap().sum_all().unwrap().backward().unwrap();
    leaves
        .iter()
        .map(|l| g.get(l).expect("missing gradient").clone())
        .collect()
}

/// conv2d: strides, symmetric / asymmetric padding, dilation, groups, 1x1, 7x7, C == H == W.
pub fn torch_conv2d(dev: &Device) {
    for case in [
        "basic",
        "stride2",
        "asym_pad",
        "dilation2",
        "groups2",
        "depthwise",
        "pointwise",
        "pointwise_s2",
        "chw_equal",
        "stem7x7",
    ] {
        let p = |n: &str| format!("conv2d.{case}.{n}");
        let (params, _) = fixture(&p("params"));
        let u = |i: usize| params[i] as usize;
        let cp = Conv2dParams {
            stride: (u(0), u(0)),
            padding: [u(1), u(2), u(3), u(4)],
            dilation: (u(5), u(5)),
            groups: u(6),
        };
        let x = load(dev, &p("x")).requires_grad_();
        let w = load(dev, &p("w")).requires_grad_();
        let b = load(dev, &p("b")).requires_grad_();
        let y = x.conv2d(&w, Some(&b), cp).unwrap();
        check(&p("y"), &y, &p("y"), FWD);
        let g = grads_for(&y, &load(dev, &p("dy")), &[&x, &w, &b]);
        check(&p("dx"), &g[0], &p("dx"), BWD);
        check(&p("dw"), &g[1], &p("dw"), BWD);
        check(&p("db"), &g[2], &p("db"), BWD);
    }
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

/// Cross-entropy with and without label smoothing.
pub fn torch_cross_entropy(dev: &Device) {
    for case in ["plain", "smooth"] {
        let p = |n: &str| format!("cross_entropy.{case}.{n}");
        let logits = load(dev, &p("logits")).requires_grad_();
        let targets: Vec<usize> = fixture(&p("targets"))
            .0
            .iter()
            .map(|&v| v as usize)
            .collect();
        let eps = fixture(&p("smoothing")).0[0];
        let loss = logits.cross_entropy(&targets, eps).unwrap();
        assert_close(
            &p("loss"),
            &loss.to_vec().unwrap(),
            &fixture(&p("loss")).0,
            FWD,
        );
        let g = loss.backward().unwrap();
        check(&p("dlogits"), g.get(&logits).unwrap(), &p("dlogits"), BWD);
    }
}

/// Max / average / adaptive pooling, forward and backward.
pub fn torch_pooling(dev: &Device) {
    let ceil = Pool2dParams {
        ceil_mode: true,
        ..Pool2dParams::new(2, 2, 0)
    };
    let nopad = Pool2dParams {
        count_include_pad: false,
        ..Pool2dParams::new(3, 2, 1)
    };
    type PoolFn = Box<dyn Fn(&Tensor) -> crate::Result<Tensor>>;
    let cases: Vec<(&str, PoolFn)> = vec![
        (
            "max_3s2p1",
            Box::new(|x| x.max_pool2d(Pool2dParams::new(3, 2, 1))),
        ),
        ("max_2s2_ceil", Box::new(move |x| x.max_pool2d(ceil))),
        (
            "avg_3s2p1",
            Box::new(|x| x.avg_pool2d(Pool2dParams::new(3, 2, 1))),
        ),
        ("avg_3s2p1_nopad", Box::new(move |x| x.avg_pool2d(nopad))),
        ("adaptive_4x3", Box::new(|x| x.adaptive_avg_pool2d((4, 3)))),
        ("adaptive_1x1", Box::new(|x| x.adaptive_avg_pool2d((1, 1)))),
    ];
    for (case, f) in cases {
        let p = |n: &str| format!("pool.{case}.{n}");
        let x = load(dev, &p("x")).requires_grad_();
        let y = f(&x).unwrap();
        check(&p("y"), &y, &p("y"), FWD);
        let g = grads_for(&y, &load(dev, &p("dy")), &[&x]);
        check(&p("dx"), &g[0], &p("dx"), BWD);
    }
}

/// GELU, SiLU, sigmoid, tanh, softmax and log-softmax against PyTorch.
pub fn torch_activations(dev: &Device) {
    type ActFn = fn(&Tensor) -> crate::Result<Tensor>;
    let cases: [(&str, ActFn); 6] = [
        ("gelu", |x| x.gelu()),
        ("silu", |x| x.silu()),
        ("sigmoid", |x| x.sigmoid()),
        ("tanh", |x| x.tanh()),
        ("softmax", |x| x.softmax(1)),
        ("log_softmax", |x| x.log_softmax(0)),
    ];
    for (case, f) in cases {
        let p = |n: &str| format!("act.{case}.{n}");
        let x = load(dev, &p("x")).requires_grad_();
        let y = f(&x).unwrap();
        check(&p("y"), &y, &p("y"), FWD);
        let g = grads_for(&y, &load(dev, &p("dy")), &[&x]);
        check(&p("dx"), &g[0], &p("dx"), BWD);
    }
}

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

/// Autocast against `torch.autocast("cpu", dtype)`: conv2d and matmul of f32
/// leaves in bf16 and in f16, forward and the f32 gradients. Different
/// summation orders may round a result to the neighbouring half value, so
/// the bound is one unit in the last place of the largest value (2^-7 for
/// bf16, 2^-10 for f16), and nearly every element must agree exactly.
pub fn torch_autocast(dev: &Device) {
    for (name, dtype, ulp) in [
        ("bf16", crate::DType::BF16, 2f32.powi(-7)),
        ("f16", crate::DType::F16, 2f32.powi(-10)),
    ] {
        let f = |k: &str| format!("autocast_{name}.{k}");
        let exact_share = |what: &str, got: &Tensor, fixture_name: &str| {
            let (want, _) = fixture(fixture_name);
            let got = got.to_vec().unwrap();
            let same = got.iter().zip(&want).filter(|(g, w)| g == w).count();
            let share = same as f64 / want.len() as f64;
            assert!(
                share >= 0.98,
                "{what}: only {same} of {} elements equal PyTorch's",
                want.len()
            );
        };
        let x = load(dev, &f("conv.x")).requires_grad_();
        let w = load(dev, &f("conv.w")).requires_grad_();
        let p = Conv2dParams::new(1, 1, 1, 1);
        let y = crate::autocast(dtype, || x.conv2d(&w, None, p))
            .unwrap()
            .unwrap();
        assert_eq!(y.dtype(), dtype, "autocast {name}: conv2d output dtype");
        let y = y.cast(crate::DType::F32).unwrap();
        check(&format!("autocast {name} conv y"), &y, &f("conv.y"), ulp);
        exact_share(&format!("autocast {name} conv y"), &y, &f("conv.y"));
        let g = grads_for(&y, &load(dev, &f("conv.dy")), &[&x, &w]);
        check(
            &format!("autocast {name} conv dx"),
            &g[0],
            &f("conv.dx"),
            ulp,
        );
        check(
            &format!("autocast {name} conv dw"),
            &g[1],
            &f("conv.dw"),
            ulp,
        );

        let a = load(dev, &f("matmul.a")).requires_grad_();
        let lw = load(dev, &f("matmul.w")).requires_grad_();
        let z = crate::autocast(dtype, || a.matmul(&lw.transpose(0, 1)?))
            .unwrap()
            .unwrap();
        assert_eq!(z.dtype(), dtype, "autocast {name}: matmul output dtype");
        let z = z.cast(crate::DType::F32).unwrap();
        check(
            &format!("autocast {name} matmul y"),
            &z,
            &f("matmul.y"),
            ulp,
        );
        let g = grads_for(&z, &load(dev, &f("matmul.dy")), &[&a, &lw]);
        check(
            &format!("autocast {name} matmul da"),
            &g[0],
            &f("matmul.da"),
            ulp,
        );
        check(
            &format!("autocast {name} matmul dw"),
            &g[1],
            &f("matmul.dw"),
            ulp,
        );
    }
}
