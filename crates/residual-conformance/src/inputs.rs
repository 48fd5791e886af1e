//! Test inputs: tensors from values, seeded normals, values away from kinks,
//! distinct values.

use residual_tensor::{Device, Tensor};

/// A tensor on `dev` from values and a shape.
pub fn t(dev: &Device, v: Vec<f32>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(v, shape.to_vec(), dev).unwrap()
}

/// Seeded normal values, deterministic per `seed`.
pub fn randn(dev: &Device, shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape.to_vec(), 0.0, 1.0, seed, dev).unwrap()
}

/// Values in `[-2, 2]` whose magnitude is at least 0.2 (away from kinks at 0).
pub(crate) fn away_from_zero(dev: &Device, shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let v = residual_tensor::rng::uniform(seed, n, -1.0, 1.0)
        .into_iter()
        .map(|u| u.signum() * (0.2 + 1.8 * u.abs()))
        .collect();
    t(dev, v, shape)
}

/// Distinct values (a shuffled ramp, step 0.05) so that maxima are unique.
pub(crate) fn distinct(dev: &Device, shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut idx: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (residual_tensor::rng::hash64(seed, i as u64) % (i as u64 + 1)) as usize;
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
