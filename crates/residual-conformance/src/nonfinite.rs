//! Inputs holding NaN, +Inf and -Inf, against PyTorch
//! (`fixtures/torch_nonfinite.safetensors`, written by
//! `scripts/fixtures/make_nonfinite_fixtures.py`).
//!
//! Each check runs a family of ops on the fixture's inputs and compares with
//! [`nonfinite_mismatch`]: NaN exactly where PyTorch gives NaN, the same
//! infinity where it gives one, finite values within the suite's forward
//! tolerance elsewhere. A failing check lists every case that differs, not
//! only the first.

use crate::assert::nonfinite_mismatch;
use crate::fixtures::{FixtureFile, BWD, FWD, TORCH_NONFINITE};
use residual_tensor::backend::UnaryOp;
use residual_tensor::{Conv2dParams, DType, Device, Pool2dParams, Result, Tensor};

/// The fixture file of this module.
const FX: &FixtureFile = &TORCH_NONFINITE;

/// Tolerance of a half-precision result: one bf16 unit in the last place
/// (2^-7) of the largest finite value.
const HALF: f32 = 1.0 / 128.0;

/// The cases of one check that differ from PyTorch, reported together.
struct Mismatches {
    check: &'static str,
    found: Vec<String>,
}

impl Mismatches {
    /// An empty report for `check`.
    fn new(check: &'static str) -> Self {
        Mismatches {
            check,
            found: Vec::new(),
        }
    }

    /// Records `case` when `got` differs from `want`.
    fn values(&mut self, case: &str, got: &[f32], want: &[f32], tol: f32) {
        if let Some(m) = nonfinite_mismatch(got, want, tol) {
            self.found.push(format!("{case}: {m}"));
        }
    }

    /// Records `case` when `got` differs in shape or values from fixture tensor `name`.
    fn tensor(&mut self, case: &str, got: &Tensor, name: &str, tol: f32) {
        let (want, shape) = FX.get(name);
        if got.dims() != shape.as_slice() {
            let msg = format!("{case}: shape {:?}, expected {shape:?}", got.dims());
            self.found.push(msg);
            return;
        }
        self.values(case, &got.to_vec().unwrap(), &want, tol);
    }

    /// Panics listing every recorded case, if any.
    fn finish(self) {
        assert!(
            self.found.is_empty(),
            "{}: {} case(s) differ from PyTorch:\n  {}",
            self.check,
            self.found.len(),
            self.found.join("\n  ")
        );
    }
}

/// The input gradient of `sum(y * dy)`.
fn input_grad(y: &Tensor, dy: &Tensor, x: &Tensor) -> Tensor {
    let g = y.mul(dy).unwrap().sum_all().unwrap().backward().unwrap();
    g.get(x).expect("no gradient for the input").clone()
}

/// A unary op of the fixture, by its name there.
type UnaryFn = fn(&Tensor) -> Result<Tensor>;

/// The unary ops of the fixture (`unary.<name>`), by name.
const UNARY: [(&str, UnaryFn); 21] = [
    ("neg", |x| x.neg()),
    ("exp", |x| x.exp()),
    ("log", |x| x.log()),
    ("sqrt", |x| x.sqrt()),
    ("rsqrt", |x| x.rsqrt()),
    ("abs", |x| x.abs()),
    ("pow_1.7", |x| x.powf(1.7)),
    ("pow_0.5", |x| x.powf(0.5)),
    ("pow_-0.5", |x| x.powf(-0.5)),
    ("pow_-1.5", |x| x.powf(-1.5)),
    ("pow_3", |x| x.powf(3.0)),
    ("pow_2", |x| x.powf(2.0)),
    ("add_scalar", |x| x.add_scalar(0.25)),
    ("mul_scalar", |x| x.mul_scalar(-3.0)),
    ("mul_zero", |x| x.mul_scalar(0.0)),
    ("clamp", |x| x.clamp(-0.5, 0.7)),
    ("relu", |x| x.relu()),
    ("gelu", |x| x.gelu()),
    ("silu", |x| x.silu()),
    ("sigmoid", |x| x.sigmoid()),
    ("tanh", |x| x.tanh()),
];

/// Unary math and activations (neg, exp, log, sqrt, rsqrt, abs, pow, scalar
/// add / mul, clamp, relu, gelu, silu, sigmoid, tanh) put NaN and +-Inf
/// where PyTorch does.
pub fn nonfinite_unary_matches_torch(dev: &Device) {
    let mut m = Mismatches::new("nonfinite unary");
    let x = FX.load(dev, "unary.x");
    for (name, f) in UNARY {
        m.tensor(name, &f(&x).unwrap(), &format!("unary.{name}.y"), FWD);
    }
    m.finish();
}

/// The unary ops' input gradients at NaN and +-Inf equal PyTorch's (relu
/// passes the gradient at NaN, clamp and abs block it).
pub fn nonfinite_unary_backward_matches_torch(dev: &Device) {
    let mut m = Mismatches::new("nonfinite unary backward");
    let x = FX.load(dev, "unary.x").requires_grad_();
    for (name, f) in UNARY {
        let p = |n: &str| format!("unary.{name}.{n}");
        let dx = input_grad(&f(&x).unwrap(), &FX.load(dev, &p("dy")), &x);
        m.tensor(name, &dx, &p("dx"), BWD);
    }
    m.finish();
}

/// Broadcasting add / sub / mul / div with NaN, +-Inf and zeros in either operand.
pub fn nonfinite_binary_matches_torch(dev: &Device) {
    type BinaryFn = fn(&Tensor, &Tensor) -> Result<Tensor>;
    let ops: [(&str, BinaryFn); 4] = [
        ("add", |a, b| a.add(b)),
        ("sub", |a, b| a.sub(b)),
        ("mul", |a, b| a.mul(b)),
        ("div", |a, b| a.div(b)),
    ];
    let mut m = Mismatches::new("nonfinite binary");
    let [a, b, c] = ["a", "b", "c"].map(|n| FX.load(dev, &format!("binary.{n}")));
    for (name, f) in ops {
        let p = |n: &str| format!("binary.{name}.{n}");
        m.tensor(&p("ab"), &f(&a, &b).unwrap(), &p("ab"), FWD);
        m.tensor(&p("ac"), &f(&a, &c).unwrap(), &p("ac"), FWD);
    }
    m.finish();
}

/// sum / mean / max / var over axis sets, and max's gradient (shared between
/// equal infinities, NaN over a row holding NaN), as PyTorch.
pub fn nonfinite_reductions_match_torch(dev: &Device) {
    let mut m = Mismatches::new("nonfinite reductions");
    let x = FX.load(dev, "reduce.x").requires_grad_();
    let cases: [(&str, Tensor); 7] = [
        ("sum_0_2", x.sum(&[0, 2], true).unwrap()),
        ("mean_last", x.mean(&[-1], false).unwrap()),
        ("max_1", x.max(&[1], false).unwrap()),
        ("max_0_2", x.max(&[0, 2], false).unwrap()),
        ("var_0_1", x.var(&[0, 1], false, true).unwrap()),
        ("var_last_biased", x.var(&[-1], false, false).unwrap()),
        ("sum_all", x.sum_all().unwrap()),
    ];
    for (name, y) in &cases {
        m.tensor(name, y, &format!("reduce.{name}"), FWD);
    }
    let dy = FX.load(dev, "reduce.max_1_grad.dy");
    let dx = input_grad(&cases[2].1, &dy, &x);
    m.tensor("max_1 backward", &dx, "reduce.max_1_grad.dx", BWD);
    m.finish();
}

/// argmax takes the first NaN when there is one, else the first maximum
/// (infinities included), along either axis.
pub fn nonfinite_argmax_matches_torch(dev: &Device) {
    let x = FX.load(dev, "argmax.x");
    for axis in [0, 1] {
        let want: Vec<usize> = FX
            .get(&format!("argmax.axis{axis}"))
            .0
            .iter()
            .map(|&v| v as usize)
            .collect();
        assert_eq!(x.argmax(axis).unwrap(), want, "argmax along axis {axis}");
    }
}

/// matmul and linear (bias included) with NaN and +-Inf in the operands.
pub fn nonfinite_matmul_linear_match_torch(dev: &Device) {
    let mut m = Mismatches::new("nonfinite matmul / linear");
    let [a, b] = ["a", "b"].map(|n| FX.load(dev, &format!("matmul.{n}")));
    m.tensor("matmul", &a.matmul(&b).unwrap(), "matmul.y", FWD);
    let [x, w, bias] = ["x", "w", "b"].map(|n| FX.load(dev, &format!("linear.{n}")));
    m.tensor(
        "linear",
        &x.linear(&w, Some(&bias)).unwrap(),
        "linear.y",
        FWD,
    );
    m.finish();
}

/// The conv2d fixture's input, weight, bias and parameters (stride 1, padding 1).
fn conv_operands(dev: &Device) -> (Tensor, Tensor, Tensor, Conv2dParams) {
    let [x, w, b] = ["x", "w", "b"].map(|n| FX.load(dev, &format!("conv2d.{n}")));
    (x, w, b, Conv2dParams::new(1, 1, 1, 1))
}

/// conv2d with NaN and +-Inf in the input: non-finite values exactly in the
/// windows that cover them.
pub fn nonfinite_conv2d_matches_torch(dev: &Device) {
    let mut m = Mismatches::new("nonfinite conv2d");
    let (x, w, b, p) = conv_operands(dev);
    m.tensor(
        "conv2d",
        &x.conv2d(&w, Some(&b), p).unwrap(),
        "conv2d.y",
        FWD,
    );
    m.finish();
}

/// The fused inference convolution with a ReLU epilogue keeps NaN and +Inf
/// (and zeroes -Inf) as `relu(conv2d + bias + residual)` does in PyTorch,
/// with a non-finite residual or bias.
pub fn nonfinite_conv2d_fused_relu_matches_torch(dev: &Device) {
    let mut m = Mismatches::new("nonfinite conv2d fused relu");
    let (x, w, b, p) = conv_operands(dev);
    let r = FX.load(dev, "conv2d.residual");
    let relu = Some(UnaryOp::Relu);
    let fused = residual_tensor::no_grad(|| x.conv2d_fused(&w, Some(&b), Some(&r), relu, p));
    m.tensor(
        "bias + residual + relu",
        &fused.unwrap(),
        "conv2d.fused_y",
        FWD,
    );
    let bs = FX.load(dev, "conv2d.bias_spiked");
    let fused = residual_tensor::no_grad(|| x.conv2d_fused(&w, Some(&bs), None, relu, p));
    m.tensor(
        "non-finite bias + relu",
        &fused.unwrap(),
        "conv2d.fused_bias_y",
        FWD,
    );
    m.finish();
}

/// A pooling op of the fixture.
type PoolFn = fn(&Tensor) -> Result<Tensor>;

/// The pooling cases of the fixture (`pool.<name>`), by name.
const POOL: [(&str, PoolFn); 6] = [
    ("max_3s2p1", |x| x.max_pool2d(Pool2dParams::new(3, 2, 1))),
    ("max_2s2_ceil", |x| {
        let p = Pool2dParams {
            ceil_mode: true,
            ..Pool2dParams::new(2, 2, 0)
        };
        x.narrow(2, 0, 5)?.narrow(3, 0, 5)?.max_pool2d(p)
    }),
    ("avg_3s2p1", |x| x.avg_pool2d(Pool2dParams::new(3, 2, 1))),
    ("avg_3s2p1_nopad", |x| {
        let p = Pool2dParams {
            count_include_pad: false,
            ..Pool2dParams::new(3, 2, 1)
        };
        x.avg_pool2d(p)
    }),
    ("adaptive_4x3", |x| x.adaptive_avg_pool2d((4, 3))),
    ("adaptive_1x1", |x| x.adaptive_avg_pool2d((1, 1))),
];

/// Max, average and adaptive pooling over NaN, +-Inf and a whole -Inf plane,
/// forward and input gradient (max pooling's goes to the window's last NaN,
/// as PyTorch's).
pub fn nonfinite_pooling_matches_torch(dev: &Device) {
    let mut m = Mismatches::new("nonfinite pooling");
    let x = FX.load(dev, "pool.x").requires_grad_();
    for (name, f) in POOL {
        let p = |n: &str| format!("pool.{name}.{n}");
        let y = f(&x).unwrap();
        m.tensor(name, &y, &p("y"), FWD);
        let dx = input_grad(&y, &FX.load(dev, &p("dy")), &x);
        m.tensor(&format!("{name} backward"), &dx, &p("dx"), BWD);
    }
    m.finish();
}

/// The affine parameters `(gamma, beta)` of norm fixture `prefix`.
fn affine(dev: &Device, prefix: &str) -> (Tensor, Tensor) {
    let load = |n: &str| FX.load(dev, &format!("{prefix}.{n}"));
    (load("gamma"), load("beta"))
}

/// Batch norm (training, with the running-stat update, and eval), group norm
/// and layer norm: a NaN or an infinity makes its own channel / group / row
/// NaN and leaves the others finite, as PyTorch.
pub fn nonfinite_norms_match_torch(dev: &Device) {
    let mut m = Mismatches::new("nonfinite norms");
    let load = |n: &str| FX.load(dev, n);
    let (g, b) = affine(dev, "batch_norm_train");
    let out = load("batch_norm_train.x")
        .batch_norm_train(Some(&g), Some(&b), 1e-5)
        .unwrap();
    m.tensor("batch_norm train", &out.y, "batch_norm_train.y", FWD);
    let mut rm = load("batch_norm_train.running_mean_before");
    let mut rv = load("batch_norm_train.running_var_before");
    out.update_running_stats(&mut rm, &mut rv, 0.1).unwrap();
    m.tensor(
        "running_mean",
        &rm,
        "batch_norm_train.running_mean_after",
        1e-5,
    );
    m.tensor(
        "running_var",
        &rv,
        "batch_norm_train.running_var_after",
        1e-5,
    );
    let (g, b) = affine(dev, "batch_norm_eval");
    let (rm, rv) = (
        load("batch_norm_eval.running_mean"),
        load("batch_norm_eval.running_var"),
    );
    let y = load("batch_norm_eval.x").batch_norm_eval(&rm, &rv, Some(&g), Some(&b), 1e-5);
    m.tensor("batch_norm eval", &y.unwrap(), "batch_norm_eval.y", FWD);
    let (g, b) = affine(dev, "group_norm");
    let y = load("group_norm.x").group_norm(3, Some(&g), Some(&b), 1e-5);
    m.tensor("group_norm", &y.unwrap(), "group_norm.y", FWD);
    let (g, b) = affine(dev, "layer_norm");
    let y = load("layer_norm.x").layer_norm(&[6], Some(&g), Some(&b), 1e-6);
    m.tensor("layer_norm", &y.unwrap(), "layer_norm.y", FWD);
    m.finish();
}

/// Softmax and log-softmax along either axis over rows with -Inf, +Inf, NaN,
/// all -Inf and none.
pub fn nonfinite_softmax_matches_torch(dev: &Device) {
    let mut m = Mismatches::new("nonfinite softmax");
    let x = FX.load(dev, "softmax.x");
    let xt = x.transpose(0, 1).unwrap();
    m.tensor(
        "softmax axis 1",
        &x.softmax(1).unwrap(),
        "softmax.softmax_1",
        FWD,
    );
    let ls = x.log_softmax(1).unwrap();
    m.tensor("log_softmax axis 1", &ls, "softmax.log_softmax_1", FWD);
    m.tensor(
        "softmax axis 0",
        &xt.softmax(0).unwrap(),
        "softmax.softmax_0",
        FWD,
    );
    let ls = xt.log_softmax(0).unwrap();
    m.tensor("log_softmax axis 0", &ls, "softmax.log_softmax_0", FWD);
    m.finish();
}

/// Cross-entropy, plain and label-smoothed, with -Inf logits off and on the
/// target, +Inf and NaN logits: loss and logit gradients as PyTorch's (a -Inf
/// logit off the target leaves the plain loss finite).
pub fn nonfinite_cross_entropy_matches_torch(dev: &Device) {
    let mut m = Mismatches::new("nonfinite cross_entropy");
    for case in ["neg_inf_other", "neg_inf_target", "pos_inf", "nan"] {
        let logits = FX
            .load(dev, &format!("cross_entropy.{case}.logits"))
            .requires_grad_();
        let targets: Vec<usize> = FX
            .get(&format!("cross_entropy.{case}.targets"))
            .0
            .iter()
            .map(|&v| v as usize)
            .collect();
        for (smoothing, eps) in [("plain", 0.0), ("smooth", 0.1)] {
            let p = |n: &str| format!("cross_entropy.{case}.{smoothing}.{n}");
            let loss = logits.cross_entropy(&targets, eps).unwrap();
            m.tensor(&p("loss"), &loss, &p("loss"), FWD);
            let dl = input_grad(&loss, &FX.load(dev, &p("dy")), &logits);
            m.tensor(&p("dlogits"), &dl, &p("dlogits"), BWD);
        }
    }
    m.finish();
}

/// f16 / bf16 casts keep NaN and +-Inf and overflow to Inf as PyTorch's; a
/// GEMM on half operands rounds an overflowing f32 product to Inf.
pub fn nonfinite_half_matches_torch(dev: &Device) {
    let mut m = Mismatches::new("nonfinite half");
    let x = FX.load(dev, "half.x");
    let [a, b] = ["a", "b"].map(|n| FX.load(dev, &format!("half_matmul.{n}")));
    for (dtype, name) in [(DType::F16, "f16"), (DType::BF16, "bf16")] {
        let back = x.cast(dtype).unwrap().cast(DType::F32).unwrap();
        m.values(
            &format!("cast {name}"),
            &back.to_vec().unwrap(),
            &FX.get(&format!("half.{name}")).0,
            0.0,
        );
        let y = a
            .cast(dtype)
            .unwrap()
            .matmul(&b.cast(dtype).unwrap())
            .unwrap();
        let y = y.cast(DType::F32).unwrap();
        m.tensor(
            &format!("matmul {name}"),
            &y,
            &format!("half_matmul.{name}.y"),
            HALF,
        );
    }
    m.finish();
}
