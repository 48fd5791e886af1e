//! Op checks against host references and finite differences.

use super::{assert_close, check_gradients, randn, t};
use crate::{Conv2dParams, DType, Device, Pool2dParams, Tensor};

/// Values in `[-2, 2]` whose magnitude is at least 0.2 (away from kinks at 0).
fn away_from_zero(dev: &Device, shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let v = crate::rng::uniform(seed, n, -1.0, 1.0)
        .into_iter()
        .map(|u| u.signum() * (0.2 + 1.8 * u.abs()))
        .collect();
    t(dev, v, shape)
}

/// Distinct values (a shuffled ramp, step 0.05) so that maxima are unique.
fn distinct(dev: &Device, shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut idx: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (crate::rng::hash64(seed, i as u64) % (i as u64 + 1)) as usize;
        idx.swap(i, j);
    }
    t(
        dev,
        idx.into_iter()
            .map(|i| i as f32 * 0.05 - n as f32 * 0.025)
            .collect(),
        shape,
    )
}

fn erf64(x: f64) -> f64 {
    libm::erf(x)
}

/// Unary ops against f64 host formulas.
pub fn unary_forward(dev: &Device) {
    let x = away_from_zero(dev, &[3, 5, 7], 1);
    let xv: Vec<f64> = x.to_vec().unwrap().iter().map(|&v| v as f64).collect();
    let pos = x.abs().unwrap();
    type Reference = Box<dyn Fn(f64) -> f64>;
    let cases: Vec<(&str, Tensor, Reference, bool)> = vec![
        ("neg", x.neg().unwrap(), Box::new(|v| -v), false),
        ("exp", x.exp().unwrap(), Box::new(f64::exp), false),
        (
            "log",
            pos.log().unwrap(),
            Box::new(|v: f64| v.abs().ln()),
            false,
        ),
        (
            "sqrt",
            pos.sqrt().unwrap(),
            Box::new(|v: f64| v.abs().sqrt()),
            false,
        ),
        (
            "rsqrt",
            pos.rsqrt().unwrap(),
            Box::new(|v: f64| 1.0 / v.abs().sqrt()),
            false,
        ),
        ("abs", x.abs().unwrap(), Box::new(f64::abs), false),
        (
            "powf",
            pos.powf(1.7).unwrap(),
            Box::new(|v: f64| v.abs().powf(1.7)),
            false,
        ),
        (
            "add_scalar",
            x.add_scalar(0.25).unwrap(),
            Box::new(|v| v + 0.25),
            false,
        ),
        (
            "mul_scalar",
            x.mul_scalar(-3.0).unwrap(),
            Box::new(|v| v * -3.0),
            false,
        ),
        (
            "clamp",
            x.clamp(-0.5, 0.7).unwrap(),
            Box::new(|v: f64| v.clamp(-0.5, 0.7)),
            false,
        ),
        (
            "relu",
            x.relu().unwrap(),
            Box::new(|v: f64| v.max(0.0)),
            false,
        ),
        (
            "gelu",
            x.gelu().unwrap(),
            Box::new(|v| 0.5 * v * (1.0 + erf64(v / 2f64.sqrt()))),
            false,
        ),
        (
            "silu",
            x.silu().unwrap(),
            Box::new(|v| v / (1.0 + (-v).exp())),
            false,
        ),
        (
            "sigmoid",
            x.sigmoid().unwrap(),
            Box::new(|v| 1.0 / (1.0 + (-v).exp())),
            false,
        ),
        ("tanh", x.tanh().unwrap(), Box::new(f64::tanh), false),
    ];
    for (name, y, f, _) in cases {
        assert_eq!(y.shape(), x.shape(), "{name}: shape");
        let want: Vec<f32> = xv.iter().map(|&v| f(v) as f32).collect();
        assert_close(name, &y.to_vec().unwrap(), &want, 1e-5);
    }
}

/// Backward of the unary math ops.
pub fn unary_backward(dev: &Device) {
    let x = away_from_zero(dev, &[2, 3, 4], 2);
    let p = x.abs().unwrap().add_scalar(0.3).unwrap();
    check_gradients("neg", dev, vec![x.clone()], 1e-2, |v| v[0].neg());
    check_gradients("exp", dev, vec![x.clone()], 1e-2, |v| v[0].exp());
    check_gradients("log", dev, vec![p.clone()], 1e-3, |v| v[0].log());
    check_gradients("sqrt", dev, vec![p.clone()], 1e-3, |v| v[0].sqrt());
    check_gradients("rsqrt", dev, vec![p.clone()], 1e-3, |v| v[0].rsqrt());
    check_gradients("abs", dev, vec![x.clone()], 1e-2, |v| v[0].abs());
    check_gradients("powf", dev, vec![p.clone()], 1e-3, |v| v[0].powf(2.5));
    check_gradients("add_scalar", dev, vec![x.clone()], 1e-2, |v| {
        v[0].add_scalar(3.0)
    });
    check_gradients("mul_scalar", dev, vec![x.clone()], 1e-2, |v| {
        v[0].mul_scalar(-2.0)
    });
    // Samples below, inside and above [-0.9, 1.1], none within the step of a bound.
    let c = t(
        dev,
        vec![-1.7, -1.0, -0.8, -0.3, 0.0, 0.4, 1.0, 1.2, 2.5],
        &[3, 3],
    );
    check_gradients("clamp", dev, vec![c], 1e-2, |v| v[0].clamp(-0.9, 1.1));
}

/// Backward of the activations.
pub fn activations_backward(dev: &Device) {
    let x = away_from_zero(dev, &[2, 3, 5], 3);
    check_gradients("relu", dev, vec![x.clone()], 1e-2, |v| v[0].relu());
    check_gradients("gelu", dev, vec![x.clone()], 1e-2, |v| v[0].gelu());
    check_gradients("silu", dev, vec![x.clone()], 1e-2, |v| v[0].silu());
    check_gradients("sigmoid", dev, vec![x.clone()], 1e-2, |v| v[0].sigmoid());
    check_gradients("tanh", dev, vec![x.clone()], 1e-2, |v| v[0].tanh());
}

/// Broadcasting add / sub / mul / div against a host reference.
pub fn binary_broadcast(dev: &Device) {
    let a = randn(dev, &[2, 3, 1, 5], 4);
    let b = away_from_zero(dev, &[4, 1], 5);
    let (av, bv) = (a.to_vec().unwrap(), b.to_vec().unwrap());
    let want = |f: fn(f32, f32) -> f32| -> Vec<f32> {
        let mut out = Vec::new();
        for i in 0..2 * 3 {
            for &bj in &bv {
                for k in 0..5 {
                    out.push(f(av[i * 5 + k], bj));
                }
            }
        }
        out
    };
    let y = a.add(&b).unwrap();
    assert_eq!(y.dims(), [2, 3, 4, 5]);
    assert_close("add", &y.to_vec().unwrap(), &want(|x, y| x + y), 1e-6);
    assert_close(
        "sub",
        &a.sub(&b).unwrap().to_vec().unwrap(),
        &want(|x, y| x - y),
        1e-6,
    );
    assert_close(
        "mul",
        &a.mul(&b).unwrap().to_vec().unwrap(),
        &want(|x, y| x * y),
        1e-6,
    );
    assert_close(
        "div",
        &a.div(&b).unwrap().to_vec().unwrap(),
        &want(|x, y| x / y),
        1e-6,
    );
    // Scalar operand and same-shape fast path.
    let s = Tensor::scalar(2.0, dev).unwrap();
    assert_close(
        "mul scalar tensor",
        &a.mul(&s).unwrap().to_vec().unwrap(),
        &av.iter().map(|v| v * 2.0).collect::<Vec<_>>(),
        1e-6,
    );
    assert_close(
        "add same shape",
        &a.add(&a).unwrap().to_vec().unwrap(),
        &av.iter().map(|v| v * 2.0).collect::<Vec<_>>(),
        1e-6,
    );
}

/// Backward of broadcasting binary ops (gradients summed back to each shape).
pub fn binary_backward(dev: &Device) {
    let a = randn(dev, &[2, 3, 4], 6);
    let b = away_from_zero(dev, &[3, 1], 7);
    check_gradients("add", dev, vec![a.clone(), b.clone()], 1e-2, |v| {
        v[0].add(&v[1])
    });
    check_gradients("sub", dev, vec![a.clone(), b.clone()], 1e-2, |v| {
        v[0].sub(&v[1])
    });
    check_gradients("mul", dev, vec![a.clone(), b.clone()], 1e-2, |v| {
        v[0].mul(&v[1])
    });
    check_gradients("div", dev, vec![a.clone(), b.clone()], 1e-3, |v| {
        v[0].div(&v[1])
    });
    check_gradients(
        "div rhs broadcast lhs",
        dev,
        vec![b.clone(), a.abs().unwrap().add_scalar(0.5).unwrap()],
        1e-3,
        |v| v[0].div(&v[1]),
    );
}

/// sum / mean / max / var over axis sets, keepdim or not.
pub fn reductions_forward(dev: &Device) {
    let x = randn(dev, &[2, 3, 4], 8);
    let v = x.to_vec().unwrap();
    let at = |i: usize, j: usize, k: usize| v[i * 12 + j * 4 + k] as f64;
    // sum over axes (0, 2) keepdim -> [1, 3, 1]
    let s = x.sum(&[0, 2], true).unwrap();
    assert_eq!(s.dims(), [1, 3, 1]);
    let want: Vec<f32> = (0..3)
        .map(|j| {
            (0..2)
                .flat_map(|i| (0..4).map(move |k| (i, k)))
                .map(|(i, k)| at(i, j, k))
                .sum::<f64>() as f32
        })
        .collect();
    assert_close("sum(0,2)", &s.to_vec().unwrap(), &want, 1e-6);
    let m = x.mean(&[-1], false).unwrap();
    assert_eq!(m.dims(), [2, 3]);
    let want: Vec<f32> = (0..6)
        .map(|r| (0..4).map(|k| v[r * 4 + k] as f64).sum::<f64>() as f32 / 4.0)
        .collect();
    assert_close("mean(-1)", &m.to_vec().unwrap(), &want, 1e-6);
    let mx = x.max(&[1], false).unwrap();
    assert_eq!(mx.dims(), [2, 4]);
    let want: Vec<f32> = (0..2)
        .flat_map(|i| (0..4).map(move |k| (i, k)))
        .map(|(i, k)| (0..3).map(|j| at(i, j, k)).fold(f64::MIN, f64::max) as f32)
        .collect();
    assert_close("max(1)", &mx.to_vec().unwrap(), &want, 0.0);
    let all = x.sum_all().unwrap();
    assert_eq!(all.dims(), [] as [usize; 0]);
    assert_close(
        "sum all",
        &all.to_vec().unwrap(),
        &[v.iter().map(|&e| e as f64).sum::<f64>() as f32],
        1e-6,
    );
    let var = x.var(&[0, 1], false, true).unwrap();
    let want: Vec<f32> = (0..4)
        .map(|k| {
            let xs: Vec<f64> = (0..6).map(|r| v[r * 4 + k] as f64).collect();
            let mu = xs.iter().sum::<f64>() / 6.0;
            (xs.iter().map(|e| (e - mu).powi(2)).sum::<f64>() / 5.0) as f32
        })
        .collect();
    assert_close("var unbiased", &var.to_vec().unwrap(), &want, 1e-5);
}

/// Backward of the reductions.
pub fn reductions_backward(dev: &Device) {
    let x = randn(dev, &[2, 3, 4], 9);
    check_gradients("sum", dev, vec![x.clone()], 1e-2, |v| {
        v[0].sum(&[0, 2], false)
    });
    check_gradients("mean", dev, vec![x.clone()], 1e-2, |v| {
        v[0].mean(&[1], true)
    });
    check_gradients("var", dev, vec![x.clone()], 1e-2, |v| {
        v[0].var(&[2], false, true)
    });
    let d = distinct(dev, &[2, 3, 4], 10);
    check_gradients("max", dev, vec![d], 1e-2, |v| v[0].max(&[1, 2], false));
}

/// argmax takes the first maximum.
pub fn argmax_first_max(dev: &Device) {
    let x = t(
        dev,
        vec![1.0, 5.0, 5.0, 0.0, -1.0, -3.0, -1.0, -2.0],
        &[2, 4],
    );
    assert_eq!(x.argmax(1).unwrap(), vec![1, 0]);
    assert_eq!(x.argmax(0).unwrap(), vec![0, 0, 0, 0]);
}

fn host_matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k)
                .map(|p| a[i * k + p] as f64 * b[p * n + j] as f64)
                .sum::<f64>() as f32;
        }
    }
    c
}

/// Matmul: plain, batched, broadcast batch (shared and materialised).
pub fn matmul_forward(dev: &Device) {
    let a = randn(dev, &[3, 5], 11);
    let b = randn(dev, &[5, 4], 12);
    let c = a.matmul(&b).unwrap();
    assert_eq!(c.dims(), [3, 4]);
    assert_close(
        "matmul 2d",
        &c.to_vec().unwrap(),
        &host_matmul(&a.to_vec().unwrap(), &b.to_vec().unwrap(), 3, 5, 4),
        1e-5,
    );
    // [2, 1, 3, 5] @ [4, 5, 2] -> [2, 4, 3, 2]
    let a = randn(dev, &[2, 1, 3, 5], 13);
    let b = randn(dev, &[4, 5, 2], 14);
    let c = a.matmul(&b).unwrap();
    assert_eq!(c.dims(), [2, 4, 3, 2]);
    let (av, bv, cv) = (
        a.to_vec().unwrap(),
        b.to_vec().unwrap(),
        c.to_vec().unwrap(),
    );
    for i in 0..2 {
        for j in 0..4 {
            let want = host_matmul(
                &av[i * 15..(i + 1) * 15],
                &bv[j * 10..(j + 1) * 10],
                3,
                5,
                2,
            );
            assert_close(
                "matmul broadcast batch",
                &cv[(i * 4 + j) * 6..(i * 4 + j + 1) * 6],
                &want,
                1e-5,
            );
        }
    }
    // A larger product through the threaded GEMM path.
    let a = randn(dev, &[67, 129], 15);
    let b = randn(dev, &[129, 70], 16);
    let want = host_matmul(&a.to_vec().unwrap(), &b.to_vec().unwrap(), 67, 129, 70);
    assert_close(
        "matmul 67x129x70",
        &a.matmul(&b).unwrap().to_vec().unwrap(),
        &want,
        1e-5,
    );
}

/// Matmul backward, including a shared (broadcast) operand.
pub fn matmul_backward(dev: &Device) {
    let a = randn(dev, &[3, 4], 17);
    let b = randn(dev, &[4, 2], 18);
    check_gradients("matmul", dev, vec![a.clone(), b.clone()], 1e-2, |v| {
        v[0].matmul(&v[1])
    });
    let a = randn(dev, &[2, 3, 4], 19);
    check_gradients(
        "matmul shared rhs",
        dev,
        vec![a.clone(), b.clone()],
        1e-2,
        |v| v[0].matmul(&v[1]),
    );
    let bb = randn(dev, &[3, 1, 4, 2], 20);
    check_gradients("matmul broadcast", dev, vec![a, bb], 1e-2, |v| {
        v[0].matmul(&v[1])
    });
}

/// `linear` against matmul with the transposed weight, forward and backward.
pub fn linear_forward_backward(dev: &Device) {
    let x = randn(dev, &[2, 3, 5], 41);
    let w = randn(dev, &[4, 5], 42);
    let b = randn(dev, &[4], 43);
    let want = x
        .matmul(&w.transpose(0, 1).unwrap())
        .unwrap()
        .add(&b)
        .unwrap();
    let got = x.linear(&w, Some(&b)).unwrap();
    assert_eq!(got.dims(), [2, 3, 4]);
    assert_close(
        "linear",
        &got.to_vec().unwrap(),
        &want.to_vec().unwrap(),
        1e-6,
    );
    check_gradients("linear", dev, vec![x, w, b], 1e-2, |v| {
        v[0].linear(&v[1], Some(&v[2]))
    });
}

/// reshape, permute, transpose, narrow, concat, index_select, broadcast_to.
pub fn layout_forward(dev: &Device) {
    let x = t(dev, (0..24).map(|v| v as f32).collect(), &[2, 3, 4]);
    let p = x.permute(&[2, 0, 1]).unwrap();
    assert_eq!(p.dims(), [4, 2, 3]);
    let pv = p.to_vec().unwrap();
    for k in 0..4 {
        for i in 0..2 {
            for j in 0..3 {
                assert_eq!(
                    pv[k * 6 + i * 3 + j],
                    (i * 12 + j * 4 + k) as f32,
                    "permute"
                );
            }
        }
    }
    let tr = x.transpose(0, -1).unwrap();
    assert_eq!(tr.dims(), [4, 3, 2]);
    assert_eq!(tr.to_vec().unwrap()[1], 12.0, "transpose");
    let n = x.narrow(2, 1, 2).unwrap();
    assert_eq!(n.dims(), [2, 3, 2]);
    assert_eq!(n.to_vec().unwrap()[..4], [1.0, 2.0, 5.0, 6.0], "narrow");
    let c = Tensor::concat(&[&x, &n], 2).unwrap();
    assert_eq!(c.dims(), [2, 3, 6]);
    assert_eq!(
        c.to_vec().unwrap()[..8],
        [0.0, 1.0, 2.0, 3.0, 1.0, 2.0, 4.0, 5.0],
        "concat"
    );
    let s = x.index_select(1, &[2, 0, 2]).unwrap();
    assert_eq!(s.dims(), [2, 3, 4]);
    assert_eq!(
        s.to_vec().unwrap()[..8],
        [8.0, 9.0, 10.0, 11.0, 0.0, 1.0, 2.0, 3.0],
        "index_select"
    );
    let b = t(dev, vec![1.0, 2.0, 3.0], &[3, 1])
        .broadcast_to(&[2, 3, 2])
        .unwrap();
    assert_eq!(
        b.to_vec().unwrap(),
        [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0],
        "broadcast_to"
    );
    let r = x.reshape(&[4, usize::MAX]).unwrap();
    assert_eq!(r.dims(), [4, 6]);
    assert_eq!(r.to_vec().unwrap(), x.to_vec().unwrap(), "reshape");
    // A permuted-then-sliced (non-contiguous in PyTorch terms) input behaves as its values.
    let nc = x
        .permute(&[0, 2, 1])
        .unwrap()
        .narrow(1, 1, 2)
        .unwrap()
        .contiguous()
        .unwrap();
    assert_eq!(nc.dims(), [2, 2, 3]);
    assert_eq!(
        nc.to_vec().unwrap()[..6],
        [1.0, 5.0, 9.0, 2.0, 6.0, 10.0],
        "permute+narrow"
    );
}

/// Backward of the layout ops.
pub fn layout_backward(dev: &Device) {
    let x = randn(dev, &[2, 3, 4], 21);
    check_gradients("permute", dev, vec![x.clone()], 1e-2, |v| {
        v[0].permute(&[1, 2, 0])
    });
    check_gradients("narrow", dev, vec![x.clone()], 1e-2, |v| {
        v[0].narrow(1, 1, 2)
    });
    check_gradients(
        "concat",
        dev,
        vec![x.clone(), x.narrow(2, 0, 3).unwrap()],
        1e-2,
        |v| Tensor::concat(&[&v[0], &v[1]], 2),
    );
    check_gradients("index_select (repeats)", dev, vec![x.clone()], 1e-2, |v| {
        v[0].index_select(2, &[3, 0, 3, 1])
    });
    check_gradients(
        "broadcast_to",
        dev,
        vec![randn(dev, &[3, 1], 22)],
        1e-2,
        |v| v[0].broadcast_to(&[2, 3, 5]),
    );
    check_gradients("reshape", dev, vec![x], 1e-2, |v| {
        v[0].reshape(&[6, 4])?.transpose(0, 1)
    });
}

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
    use crate::backend::UnaryOp;
    let x = randn(dev, &[2, 3, 6, 5], 44);
    let w = randn(dev, &[4, 3, 3, 3], 45);
    let b = randn(dev, &[4], 46);
    let p = Conv2dParams::new(2, 1, 1, 1);
    let r = randn(dev, &[2, 4, 3, 3], 47);
    for act in [None, Some(UnaryOp::Relu), Some(UnaryOp::Silu)] {
        let fused = crate::no_grad(|| x.conv2d_fused(&w, Some(&b), Some(&r), act, p)).unwrap();
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
    let fused = crate::no_grad(|| x.conv2d_fused(&w, None, None, Some(UnaryOp::Relu), p)).unwrap();
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

/// Pooling backward against finite differences.
pub fn pool_finite_differences(dev: &Device) {
    let x = distinct(dev, &[2, 2, 5, 7], 30);
    check_gradients("max_pool2d", dev, vec![x.clone()], 1e-2, |v| {
        v[0].max_pool2d(Pool2dParams::new(3, 2, 1))
    });
    check_gradients("avg_pool2d", dev, vec![x.clone()], 1e-2, |v| {
        v[0].avg_pool2d(Pool2dParams::new(2, 2, 1))
    });
    check_gradients("adaptive_avg_pool2d", dev, vec![x], 1e-2, |v| {
        v[0].adaptive_avg_pool2d((3, 4))
    });
}

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

/// Softmax, log-softmax and cross-entropy backward against finite differences.
pub fn softmax_cross_entropy_finite_differences(dev: &Device) {
    let x = randn(dev, &[3, 4, 2], 36);
    check_gradients("softmax axis 1", dev, vec![x.clone()], 1e-2, |v| {
        v[0].softmax(1)
    });
    check_gradients("log_softmax axis -1", dev, vec![x.clone()], 1e-2, |v| {
        v[0].log_softmax(-1)
    });
    let logits = randn(dev, &[4, 5], 37);
    check_gradients("cross_entropy", dev, vec![logits.clone()], 1e-2, |v| {
        v[0].cross_entropy(&[1, 0, 4, 2], 0.0)
    });
    check_gradients("cross_entropy smoothed", dev, vec![logits], 1e-2, |v| {
        v[0].cross_entropy(&[3, 3, 0, 1], 0.2)
    });
}

/// Dropout: seeded, the expected keep rate and scale, backward uses the same mask.
pub fn dropout_mask(dev: &Device) {
    let x = Tensor::ones([64, 64], dev).unwrap().requires_grad_();
    let y = x.dropout(0.25, 42).unwrap();
    let yv = y.to_vec().unwrap();
    assert!(
        yv.iter()
            .all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6),
        "dropout values must be 0 or 1/(1-p)"
    );
    let kept = yv.iter().filter(|&&v| v != 0.0).count() as f32 / yv.len() as f32;
    assert!(
        (kept - 0.75).abs() < 0.03,
        "keep rate {kept}, expected 0.75"
    );
    assert_eq!(
        x.dropout(0.25, 42).unwrap().to_vec().unwrap(),
        yv,
        "same seed, same mask"
    );
    assert_ne!(
        x.dropout(0.25, 43).unwrap().to_vec().unwrap(),
        yv,
        "new seed, new mask"
    );
    let g = y.sum_all().unwrap().backward().unwrap();
    assert_eq!(
        g.get(&x).unwrap().to_vec().unwrap(),
        yv,
        "gradient uses the forward mask"
    );
}

/// The residual add uses `x` twice: its gradient is the sum of both paths.
pub fn residual_add_accumulates(dev: &Device) {
    let x = randn(dev, &[2, 3], 38).requires_grad_();
    let w = randn(dev, &[3, 3], 39).requires_grad_();
    // y = relu(x @ w) + x ; loss = sum(y)
    let y = x.matmul(&w).unwrap().tanh().unwrap().add(&x).unwrap();
    let g = y.sum_all().unwrap().backward().unwrap();
    let gx = g.get(&x).unwrap().to_vec().unwrap();
    // d/dx = (1 - tanh^2(xw)) @ w^T + 1
    let h = x.matmul(&w).unwrap().tanh().unwrap();
    let dh = h.mul(&h).unwrap().neg().unwrap().add_scalar(1.0).unwrap();
    let want = dh
        .matmul(&w.transpose(0, 1).unwrap())
        .unwrap()
        .add_scalar(1.0)
        .unwrap()
        .to_vec()
        .unwrap();
    assert_close("residual grad", &gx, &want, 1e-5);
    // x + x: both uses count.
    let g2 = x.add(&x).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(g2.get(&x).unwrap().to_vec().unwrap(), vec![2.0; 6]);
    assert_eq!(g.len(), 2, "gradients for x and w only");
}

/// `no_grad` records nothing; `detach` cuts the graph.
pub fn no_grad_and_detach(dev: &Device) {
    let x = randn(dev, &[3], 40).requires_grad_();
    let y = crate::no_grad(|| x.mul(&x).unwrap());
    assert!(!y.requires_grad() && y.is_leaf());
    assert!(
        y.sum_all().unwrap().backward().is_err(),
        "backward without a graph is an error"
    );
    let z = x.detach().mul(&x).unwrap().sum_all().unwrap();
    let g = z.backward().unwrap();
    assert_close(
        "detach",
        &g.get(&x).unwrap().to_vec().unwrap(),
        &x.to_vec().unwrap(),
        0.0,
    );
}

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
        let y = crate::autocast(dtype, || xl.conv2d(&wl, None, p))
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

/// Training-mode batch norm takes a half input as it is (as a convolution's
/// output under autocast): its output, statistics and affine gradients equal
/// those of the upcast input, and the input's gradient is that one rounded
/// once to the input's dtype.
pub fn batch_norm_half_input(dev: &Device) {
    for dtype in [DType::BF16, DType::F16] {
        let x = randn(dev, &[3, 4, 5, 6], 21).cast(dtype).unwrap();
        let xw = x.cast(DType::F32).unwrap();
        let gamma = randn(dev, &[4], 22).requires_grad_();
        let beta = randn(dev, &[4], 23).requires_grad_();
        let dy = randn(dev, &[3, 4, 5, 6], 24);
        let run = |input: &Tensor| {
            let input = input.clone().requires_grad_();
            let out = input
                .batch_norm_train(Some(&gamma), Some(&beta), 1e-5)
                .unwrap();
            let g = out
                .y
                .mul(&dy)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let grads = [&input, &gamma, &beta].map(|t| g.get(t).unwrap().clone());
            (out, grads)
        };
        let (half, [dx, dgamma, dbeta]) = run(&x);
        let (wide, [dxw, dgammaw, dbetaw]) = run(&xw);
        assert_eq!(
            half.y.dtype(),
            DType::F32,
            "batch norm of {dtype} returns f32"
        );
        for (what, got, want) in [
            ("y", &half.y, &wide.y),
            ("mean", &half.mean, &wide.mean),
            ("var", &half.var_unbiased, &wide.var_unbiased),
            ("dgamma", &dgamma, &dgammaw),
            ("dbeta", &dbeta, &dbetaw),
        ] {
            assert_eq!(
                got.to_vec().unwrap(),
                want.to_vec().unwrap(),
                "{what} {dtype}"
            );
        }
        assert_eq!(dx.dtype(), dtype, "the gradient has the input's dtype");
        assert_eq!(
            dx.cast(DType::F32).unwrap().to_vec().unwrap(),
            dxw.cast(dtype)
                .unwrap()
                .cast(DType::F32)
                .unwrap()
                .to_vec()
                .unwrap(),
            "dx {dtype}"
        );
    }
}
