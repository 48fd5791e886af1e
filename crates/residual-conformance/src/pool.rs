//! Max, average and adaptive average pooling.

use crate::assert::check_gradients;
use crate::fixtures::{check, grads_for, load, BWD, FWD};
use crate::inputs::distinct;
use residual_tensor::{Device, Pool2dParams, Tensor};

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
    type PoolFn = Box<dyn Fn(&Tensor) -> residual_tensor::Result<Tensor>>;
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
