//! Dropout's seeded mask.

use residual_tensor::{Device, Tensor};

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
