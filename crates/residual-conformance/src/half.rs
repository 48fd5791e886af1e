//! Half precision: casts, GEMM ops on f16 / bf16 operands, norms of a
//! half input, and autocast against PyTorch's.

use crate::fixtures::{check, fixture, grads_for, load};
use crate::inputs::{randn, t};
use residual_tensor::backend::{AxisView, RowAffine};
use residual_tensor::{Conv2dParams, DType, Device, Tensor};

/// f32 -> f16 / bf16 -> f32 round trips and ops refusing half storage.
pub fn casts_round_trip(dev: &Device) {
    let x = t(dev, vec![1.0, -2.5, 1e-3, 65504.0, 2.71], &[5]);
    let h = x.cast(DType::F16).unwrap();
    assert_eq!(h.dtype(), DType::F16);
    let back = h.cast(DType::F32).unwrap().to_vec().unwrap();
    let want: Vec<f32> = x
        .to_vec()
        .unwrap()
        .iter()
        .map(|&v| half::f16::from_f32(v).to_f32())
        .collect();
    assert_eq!(back, want);
    let b = x
        .cast(DType::BF16)
        .unwrap()
        .cast(DType::F32)
        .unwrap()
        .to_vec()
        .unwrap();
    let want: Vec<f32> = x
        .to_vec()
        .unwrap()
        .iter()
        .map(|&v| half::bf16::from_f32(v).to_f32())
        .collect();
    assert_eq!(b, want);
    // f32 ops upcast half inputs (differentiably) and return f32.
    let r = h.neg().unwrap();
    assert_eq!(r.dtype(), DType::F32);
    let want: Vec<f32> = back.iter().map(|v| -v).collect();
    assert_eq!(r.to_vec().unwrap(), want);
}

/// GEMM ops on half operands (and under autocast) compute the f32 product of
/// the upcast operands and round it once to the half dtype; the gradients
/// reach the f32 master tensors in f32.
pub fn half_gemm_ops(dev: &Device) {
    let p = Conv2dParams {
        padding: [1; 4],
        ..Default::default()
    };
    for dtype in [DType::BF16, DType::F16] {
        let x = randn(dev, &[2, 3, 5, 5], 11);
        let w = randn(dev, &[4, 3, 3, 3], 12);
        let (xh, wh) = (x.cast(dtype).unwrap(), w.cast(dtype).unwrap());
        let wide = |t: &Tensor| t.cast(DType::F32).unwrap();
        let rounded = |t: Tensor| t.cast(dtype).unwrap().cast(DType::F32).unwrap();
        // Forward: exactly round(f32 conv of the upcast operands).
        let y = xh.conv2d(&wh, None, p).unwrap();
        assert_eq!(y.dtype(), dtype);
        let want = rounded(wide(&xh).conv2d(&wide(&wh), None, p).unwrap());
        assert_eq!(
            wide(&y).to_vec().unwrap(),
            want.to_vec().unwrap(),
            "conv2d {dtype}"
        );
        let a = randn(dev, &[3, 7], 13).cast(dtype).unwrap();
        let b = randn(dev, &[7, 5], 14).cast(dtype).unwrap();
        let m = a.matmul(&b).unwrap();
        let want = rounded(wide(&a).matmul(&wide(&b)).unwrap());
        assert_eq!(
            wide(&m).to_vec().unwrap(),
            want.to_vec().unwrap(),
            "matmul {dtype}"
        );

        // Under autocast: f32 leaves in, half out, f32 gradients that equal
        // the half backward kernels of the rounded operands and gradient.
        let (xl, wl) = (x.clone().requires_grad_(), w.clone().requires_grad_());
        let y = residual_tensor::autocast(dtype, || xl.conv2d(&wl, None, p))
            .unwrap()
            .unwrap();
        assert_eq!(y.dtype(), dtype);
        assert_eq!(
            wide(&y).to_vec().unwrap(),
            wide(&xh.conv2d(&wh, None, p).unwrap()).to_vec().unwrap()
        );
        let dy = randn(dev, y.dims(), 15);
        let g = wide(&y)
            .mul(&dy)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let (gx, gw) = (g.get(&xl).unwrap(), g.get(&wl).unwrap());
        assert_eq!((gx.dtype(), gw.dtype()), (DType::F32, DType::F32));
        let dyh = dy.cast(dtype).unwrap();
        let (xr, wr) = (xh.clone().requires_grad_(), wh.clone().requires_grad_());
        let gh = xr.conv2d(&wr, None, p).unwrap().mul(&dyh).unwrap();
        // d(sum(y * dy)) with y, dy half: the product upcasts, so the
        // gradient reaching y is dy (rounded), as under autocast.
        let gh = gh.sum_all().unwrap().backward().unwrap();
        assert_eq!(
            gx.to_vec().unwrap(),
            wide(gh.get(&xr).unwrap()).to_vec().unwrap(),
            "dx {dtype}"
        );
        assert_eq!(
            gw.to_vec().unwrap(),
            wide(gh.get(&wr).unwrap()).to_vec().unwrap(),
            "dw {dtype}"
        );
    }
}

/// The fused inference convolution on an input and weight of one half dtype
/// (the bf16 inference path): the result keeps that dtype and is the f32
/// fused convolution of the upcast operands (f32 bias, residual upcast,
/// ReLU), rounded once. The kernels may add the same exact products in
/// another order than the f32 path, so a value may round to the neighbour of
/// the reference's half value: one unit in the last place of the half dtype,
/// plus 1e-5 of the largest value for sums that cancel. With a gradient to
/// compute the separate ops run instead: the half convolution (rounded), then
/// bias, residual and ReLU in f32, the result rounded again to the dtype.
pub fn half_conv2d_fused(dev: &Device) {
    use residual_tensor::backend::UnaryOp;
    let p = Conv2dParams {
        padding: [1; 4],
        ..Default::default()
    };
    for (dtype, ulp) in [(DType::BF16, 1.0 / 128.0), (DType::F16, 1.0 / 1024.0)] {
        let x = randn(dev, &[2, 3, 5, 5], 21).cast(dtype).unwrap();
        let w = randn(dev, &[4, 3, 3, 3], 22).cast(dtype).unwrap();
        let bias = randn(dev, &[4], 23);
        let res = randn(dev, &[2, 4, 5, 5], 24).cast(dtype).unwrap();
        let wide = |t: &Tensor| t.cast(DType::F32).unwrap();
        let fused = |x: &Tensor, w: &Tensor, r: &Tensor| {
            x.conv2d_fused(w, Some(&bias), Some(r), Some(UnaryOp::Relu), p)
                .unwrap()
        };
        let want = residual_tensor::no_grad(|| fused(&wide(&x), &wide(&w), &wide(&res)))
            .cast(dtype)
            .unwrap();
        let want = wide(&want).to_vec().unwrap();
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let close = |what: &str, y: &Tensor| {
            assert_eq!(y.dtype(), dtype, "{what} {dtype}: the input's dtype");
            for (i, (g, r)) in wide(y).to_vec().unwrap().iter().zip(&want).enumerate() {
                let tol = ulp * r.abs() + 1e-5 * scale;
                assert!(
                    (g - r).abs() <= tol,
                    "{what} {dtype}: element {i} is {g}, the rounded f32 result {r}"
                );
            }
        };
        close(
            "fused kernel",
            &residual_tensor::no_grad(|| fused(&x, &w, &res)),
        );
        let separate = fused(&x.requires_grad_(), &w, &res);
        assert_eq!(separate.dtype(), dtype, "separate ops {dtype}");
        let composed = x
            .conv2d(&w, None, p)
            .unwrap()
            .add(&bias.reshape(&[1, 4, 1, 1]).unwrap())
            .unwrap()
            .add(&res)
            .unwrap()
            .relu()
            .unwrap()
            .cast(dtype)
            .unwrap();
        assert_eq!(
            wide(&separate).to_vec().unwrap(),
            wide(&composed).to_vec().unwrap(),
            "separate ops {dtype}"
        );
    }
}

/// Training-mode batch norm, group norm and layer norm take a half input as
/// it is (as a convolution's or a linear layer's output under autocast):
/// the backend's kernels read the half storage and write its gradient in the
/// half dtype (no f32 copy is made first). Through the ops, their output
/// has the input's dtype (as PyTorch's batch norm of a bf16 input) and is
/// the upcast input's output rounded once. Their batch statistics and affine gradients equal those of the
/// upcast input, and the input's gradient is that one rounded once to the
/// input's dtype (`dy` is drawn in the half dtype, so that a half output's
/// gradient, taken in its dtype, carries the same values). Layer norm over
/// 40 columns runs the kernels' vector lanes and their tail; group norm of
/// 1x1 planes their one-parameter-per-column path.
pub fn norms_take_half_inputs(dev: &Device) {
    kernels_read_half_storage(dev);
    type Norm = fn(&Tensor, &Tensor, &Tensor) -> (Tensor, Vec<Tensor>);
    let norms: [(&str, &[usize], usize, Norm); 4] = [
        ("batch_norm", &[3, 4, 5, 6], 4, |x, g, b| {
            let out = x.batch_norm_train(Some(g), Some(b), 1e-5).unwrap();
            (out.y, vec![out.mean, out.var_unbiased])
        }),
        ("group_norm", &[3, 4, 5, 6], 4, |x, g, b| {
            (x.group_norm(2, Some(g), Some(b), 1e-5).unwrap(), vec![])
        }),
        ("group_norm of 1x1 planes", &[3, 4, 1, 1], 4, |x, g, b| {
            (x.group_norm(2, Some(g), Some(b), 1e-5).unwrap(), vec![])
        }),
        ("layer_norm", &[3, 4, 40], 40, |x, g, b| {
            (x.layer_norm(&[40], Some(g), Some(b), 1e-6).unwrap(), vec![])
        }),
    ];
    for (name, dims, params, norm) in norms {
        for dtype in [DType::BF16, DType::F16] {
            let x = randn(dev, dims, 21).cast(dtype).unwrap();
            let xw = x.cast(DType::F32).unwrap();
            let gamma = randn(dev, &[params], 22).requires_grad_();
            let beta = randn(dev, &[params], 23).requires_grad_();
            let dy = randn(dev, dims, 24)
                .cast(dtype)
                .unwrap()
                .cast(DType::F32)
                .unwrap();
            let run = |input: &Tensor| {
                let input = input.clone().requires_grad_();
                let (y, stats) = norm(&input, &gamma, &beta);
                let g = y.mul(&dy).unwrap().sum_all().unwrap().backward().unwrap();
                let grads = [&input, &gamma, &beta].map(|t| g.get(t).unwrap().clone());
                (y, stats, grads)
            };
            let (y, stats, [dx, dgamma, dbeta]) = run(&x);
            let (yw, statsw, [dxw, dgammaw, dbetaw]) = run(&xw);
            assert_eq!(y.dtype(), dtype, "{name} of {dtype} returns {dtype}");
            let (y, yw) = (
                y.cast(DType::F32).unwrap(),
                yw.cast(dtype).unwrap().cast(DType::F32).unwrap(),
            );
            let pairs = [("y", &y, &yw), ("dgamma", &dgamma, &dgammaw)]
                .into_iter()
                .chain([("dbeta", &dbeta, &dbetaw)])
                .chain(stats.iter().zip(&statsw).map(|(a, b)| ("statistic", a, b)));
            for (what, got, want) in pairs {
                assert_eq!(
                    got.to_vec().unwrap(),
                    want.to_vec().unwrap(),
                    "{name} {what} {dtype}"
                );
            }
            assert_eq!(
                dx.dtype(),
                dtype,
                "{name}: the gradient has the input's dtype"
            );
            assert_eq!(
                dx.cast(DType::F32).unwrap().to_vec().unwrap(),
                dxw.cast(dtype)
                    .unwrap()
                    .cast(DType::F32)
                    .unwrap()
                    .to_vec()
                    .unwrap(),
                "{name} dx {dtype}"
            );
        }
    }
}

/// ReLU and GELU of a half tensor and the sum of two tensors of one half
/// dtype keep that dtype (PyTorch's ops between a ResNet's convolutions
/// under autocast): each equals the f32 op on the upcast operands, rounded
/// once, and their gradients come back in the half dtype, equal to the f32
/// gradients rounded once (`dy` drawn in the half dtype). NaN passes ReLU.
/// Operands of two dtypes, and the other ops, compute in f32.
pub fn activations_keep_half_dtype(dev: &Device) {
    for dtype in [DType::BF16, DType::F16] {
        let half = |seed| {
            let mut v = randn(dev, &[2, 3, 4, 5], seed).to_vec().unwrap();
            v[7] = f32::NAN;
            v[8] = 0.0;
            t(dev, v, &[2, 3, 4, 5]).cast(dtype).unwrap()
        };
        let (a, b) = (half(31), half(32));
        let dy = randn(dev, &[2, 3, 4, 5], 33).cast(dtype).unwrap();
        let wide = |t: &Tensor| t.cast(DType::F32).unwrap();
        let bits = |t: &Tensor| -> Vec<u32> {
            wide(t)
                .to_vec()
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect()
        };
        type Op = fn(&Tensor, &Tensor) -> Tensor;
        let ops: [(&str, Op); 3] = [
            ("relu", |a, _| a.relu().unwrap()),
            ("gelu", |a, _| a.gelu().unwrap()),
            ("add", |a, b| a.add(b).unwrap()),
        ];
        for (name, op) in ops {
            let run = |a: &Tensor, b: &Tensor, dy: &Tensor| {
                let (a, b) = (a.clone().requires_grad_(), b.clone().requires_grad_());
                let y = op(&a, &b);
                let g = y.mul(dy).unwrap().sum_all().unwrap().backward().unwrap();
                let grad = |t: &Tensor| g.get(t).cloned();
                (y, grad(&a), grad(&b))
            };
            let (y, ga, gb) = run(&a, &b, &dy);
            let (yw, gaw, gbw) = run(&wide(&a), &wide(&b), &wide(&dy));
            assert_eq!(y.dtype(), dtype, "{name} of {dtype} keeps {dtype}");
            assert_eq!(bits(&y), bits(&yw.cast(dtype).unwrap()), "{name} {dtype}");
            for (which, g, gw) in [("a", ga, gaw), ("b", gb, gbw)] {
                let (Some(g), Some(gw)) = (g, gw) else {
                    assert_ne!(name, "add", "{name}: a gradient for {which}");
                    continue;
                };
                assert_eq!(g.dtype(), dtype, "{name} d{which}: {dtype}");
                assert_eq!(
                    bits(&g),
                    bits(&gw.cast(dtype).unwrap()),
                    "{name} d{which} {dtype}"
                );
            }
        }
        // Two dtypes, or another op: f32.
        assert_eq!(
            a.add(&wide(&b)).unwrap().dtype(),
            DType::F32,
            "{dtype} + f32"
        );
        assert_eq!(a.mul(&b).unwrap().dtype(), DType::F32, "{dtype} * {dtype}");
        assert_eq!(a.sub(&b).unwrap().dtype(), DType::F32, "{dtype} - {dtype}");
        assert_eq!(a.silu().unwrap().dtype(), DType::F32, "silu of {dtype}");
    }
}

/// The norm kernels of `dev`'s backend called on half storage directly:
/// they return the input's dtype and its gradient in that dtype, and their
/// backward takes `dy` in f32 or in the input's dtype.
fn kernels_read_half_storage(dev: &Device) {
    let be = dev.backend();
    let (rows, cols) = (6, 40);
    for dtype in [DType::BF16, DType::F16] {
        let x = randn(dev, &[rows, cols], 25).cast(dtype).unwrap();
        let dy = randn(dev, &[rows, cols], 26);
        let (gamma, beta) = (randn(dev, &[cols], 27), randn(dev, &[cols], 28));
        let affine = RowAffine {
            groups: 1,
            channels_per_group: cols,
            per_channel: 1,
        };
        let (y, stats) = be
            .row_norm(
                x.storage(),
                rows,
                cols,
                affine,
                gamma.storage(),
                beta.storage(),
                1e-6,
            )
            .unwrap_or_else(|e| panic!("row_norm of {dtype} storage: {e}"));
        assert_eq!(y.dtype(), dtype, "row_norm of {dtype} returns {dtype}");
        for dy in [dy.clone(), dy.cast(dtype).unwrap()] {
            let g = be
                .row_norm_backward(
                    x.storage(),
                    dy.storage(),
                    rows,
                    cols,
                    affine,
                    gamma.storage(),
                    &stats,
                )
                .unwrap_or_else(|e| panic!("row_norm_backward of {dtype} storage: {e}"));
            assert_eq!(g.dx.dtype(), dtype, "row_norm_backward's dx of {dtype}");
        }
        let view = AxisView::new(x.shape(), 1);
        let (gamma, beta) = (randn(dev, &[cols], 29), randn(dev, &[cols], 30));
        let (y, stats) = be
            .batch_norm(x.storage(), view, gamma.storage(), beta.storage(), 1e-5)
            .unwrap_or_else(|e| panic!("batch_norm of {dtype} storage: {e}"));
        assert_eq!(y.dtype(), dtype, "batch_norm of {dtype} returns {dtype}");
        for dy in [dy.clone(), dy.cast(dtype).unwrap()] {
            let g = be
                .batch_norm_backward(x.storage(), dy.storage(), view, gamma.storage(), &stats)
                .unwrap_or_else(|e| panic!("batch_norm_backward of {dtype} storage: {e}"));
            assert_eq!(g.dx.dtype(), dtype, "batch_norm_backward's dx of {dtype}");
        }
    }
}

/// Autocast against `torch.autocast("cpu", dtype)`: conv2d and matmul of f32
/// leaves in bf16 and in f16, forward and the f32 gradients. Different
/// summation orders may round a result to the neighbouring half value, so
/// the bound is one unit in the last place of the largest value (2^-7 for
/// bf16, 2^-10 for f16), and nearly every element must agree exactly.
pub fn torch_autocast(dev: &Device) {
    for (name, dtype, ulp) in [
        ("bf16", residual_tensor::DType::BF16, 2f32.powi(-7)),
        ("f16", residual_tensor::DType::F16, 2f32.powi(-10)),
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
        let y = residual_tensor::autocast(dtype, || x.conv2d(&w, None, p))
            .unwrap()
            .unwrap();
        assert_eq!(y.dtype(), dtype, "autocast {name}: conv2d output dtype");
        let y = y.cast(residual_tensor::DType::F32).unwrap();
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
        let z = residual_tensor::autocast(dtype, || a.matmul(&lw.transpose(0, 1)?))
            .unwrap()
            .unwrap();
        assert_eq!(z.dtype(), dtype, "autocast {name}: matmul output dtype");
        let z = z.cast(residual_tensor::DType::F32).unwrap();
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
