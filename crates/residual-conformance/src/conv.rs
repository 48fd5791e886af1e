//! Convolution: finite differences, the fused inference epilogue,
//! non-contiguous inputs and PyTorch's conv2d.

use crate::assert::{assert_close, check_gradients};
use crate::fixtures::{check, fixture, grads_for, load, BWD, FWD};
use crate::inputs::randn;
use residual_tensor::{Conv2dParams, Device, Tensor};

/// Convolution backward against finite differences (odd sizes, groups, asymmetric padding).
pub fn conv2d_finite_differences(dev: &Device) {
    let x = randn(dev, &[2, 4, 5, 6], 23);
    let w = randn(dev, &[6, 2, 3, 2], 24);
    let b = randn(dev, &[6], 25);
    let p = Conv2dParams {
        stride: (2, 1),
        padding: [1, 0, 0, 1],
        dilation: (1, 2),
        groups: 2,
    };
    check_gradients("conv2d grouped", dev, vec![x, w, b], 1e-2, move |v| {
        v[0].conv2d(&v[1], Some(&v[2]), p)
    });
    let x = randn(dev, &[1, 3, 4, 4], 26);
    let w = randn(dev, &[2, 3, 1, 1], 27);
    check_gradients("conv2d 1x1", dev, vec![x, w], 1e-2, |v| {
        v[0].conv2d(&v[1], None, Conv2dParams::default())
    });
}

/// The fused inference convolution equals conv + bias + residual + activation,
/// and with gradients it is differentiable like them.
pub fn conv2d_fused_epilogue(dev: &Device) {
    use residual_tensor::backend::UnaryOp;
    let x = randn(dev, &[2, 3, 6, 5], 44);
    let w = randn(dev, &[4, 3, 3, 3], 45);
    let b = randn(dev, &[4], 46);
    let p = Conv2dParams::new(2, 1, 1, 1);
    let r = randn(dev, &[2, 4, 3, 3], 47);
    for act in [None, Some(UnaryOp::Relu), Some(UnaryOp::Silu)] {
        let fused =
            residual_tensor::no_grad(|| x.conv2d_fused(&w, Some(&b), Some(&r), act, p)).unwrap();
        let mut want = x.conv2d(&w, Some(&b), p).unwrap().add(&r).unwrap();
        if let Some(op) = act {
            want = want.unary_op(op).unwrap();
        }
        assert_close(
            &format!("conv2d_fused {act:?}"),
            &fused.to_vec().unwrap(),
            &want.to_vec().unwrap(),
            1e-6,
        );
    }
    let fused = residual_tensor::no_grad(|| x.conv2d_fused(&w, None, None, Some(UnaryOp::Relu), p))
        .unwrap();
    assert_close(
        "conv2d_fused relu only",
        &fused.to_vec().unwrap(),
        &x.conv2d(&w, None, p)
            .unwrap()
            .relu()
            .unwrap()
            .to_vec()
            .unwrap(),
        1e-6,
    );
    check_gradients(
        "conv2d_fused with grad",
        dev,
        vec![x, w, b, r],
        1e-2,
        move |v| v[0].conv2d_fused(&v[1], Some(&v[2]), Some(&v[3]), Some(UnaryOp::Tanh), p),
    );
}

/// A convolution of a permuted input (NHWC data viewed as NCHW) equals the
/// convolution of the same values laid out NCHW: no layout guessed from strides.
pub fn conv2d_non_contiguous_input(dev: &Device) {
    // C == H == W, the shape that fools stride-based layout inference.
    let x = randn(dev, &[2, 5, 5, 5], 28);
    let w = randn(dev, &[3, 5, 3, 3], 29);
    let p = Conv2dParams::new(1, 1, 1, 1);
    let nhwc = x.permute(&[0, 2, 3, 1]).unwrap();
    let back = nhwc.permute(&[0, 3, 1, 2]).unwrap();
    let a = x.conv2d(&w, None, p).unwrap().to_vec().unwrap();
    let b = back.conv2d(&w, None, p).unwrap().to_vec().unwrap();
    assert_close("conv of permuted input", &b, &a, 0.0);
    // A sliced input equals the conv of the copied slice.
    let s = x.narrow(3, 1, 3).unwrap();
    let copy = Tensor::from_vec(s.to_vec().unwrap(), s.shape().clone(), dev).unwrap();
    assert_close(
        "conv of sliced input",
        &s.conv2d(&w, None, p).unwrap().to_vec().unwrap(),
        &copy.conv2d(&w, None, p).unwrap().to_vec().unwrap(),
        0.0,
    );
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
