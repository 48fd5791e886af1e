//! Reductions (sum, mean, max, var) and argmax against host references and
//! finite differences.

use crate::assert::{assert_close, check_gradients};
use crate::inputs::{distinct, randn, t};
use residual_tensor::Device;

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
