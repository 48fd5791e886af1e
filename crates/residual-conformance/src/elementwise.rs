//! Elementwise ops: unary math, activations and broadcasting binary ops,
//! against f64 host formulas, finite differences and PyTorch.

use crate::assert::{assert_close, check_gradients};
use crate::fixtures::{check, grads_for, load, BWD, FWD};
use crate::inputs::{away_from_zero, randn, t};
use residual_tensor::{Device, Tensor};

/// The error function in f64, for the exact-erf GELU reference.
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

/// GELU, SiLU, sigmoid, tanh, softmax and log-softmax against PyTorch.
pub fn torch_activations(dev: &Device) {
    type ActFn = fn(&Tensor) -> residual_tensor::Result<Tensor>;
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
