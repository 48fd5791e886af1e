//! Matrix products (plain, batched, broadcast batch) and `linear`.

use crate::assert::{assert_close, check_gradients};
use crate::inputs::randn;
use residual_tensor::Device;

/// `a[m, k] @ b[k, n]` on the host, accumulated in f64.
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
