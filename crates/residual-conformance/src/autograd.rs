//! Autograd semantics: gradients accumulating over several paths, `no_grad`
//! and `detach`.

use crate::assert::assert_close;
use crate::inputs::randn;
use residual_tensor::Device;

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
    let y = residual_tensor::no_grad(|| x.mul(&x).unwrap());
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
