//! Initialisation as torchvision's ResNet does it, from explicit seeds.

use residual_tensor::{Device, Result, Tensor};

/// Kaiming normal, `mode='fan_out'`, `nonlinearity='relu'`: std = sqrt(2 / fan_out)
/// with `fan_out = shape[0] * prod(shape[2..])` (torchvision's conv init).
pub fn kaiming_normal_fan_out(shape: &[usize], seed: u64, dev: &Device) -> Result<Tensor> {
    let fan_out = shape[0] * shape[2..].iter().product::<usize>();
    let std = (2.0 / fan_out.max(1) as f32).sqrt();
    Tensor::randn(shape.to_vec(), 0.0, std, seed, dev)
}

/// PyTorch's default `Linear` / `Conv` init: `kaiming_uniform_(a=sqrt(5))`,
/// i.e. uniform in `±1/sqrt(fan_in)`, with `fan_in = prod(shape[1..])`; the
/// bias uses the same bound.
pub fn default_uniform(shape: &[usize], fan_in: usize, seed: u64, dev: &Device) -> Result<Tensor> {
    let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
    Tensor::rand_uniform(shape.to_vec(), -bound, bound, seed, dev)
}

/// A seed for the `index`-th tensor of a model built from `seed`.
pub fn derive_seed(seed: u64, index: u64) -> u64 {
    residual_tensor::rng::hash64(seed ^ 0x5eed_5eed_5eed_5eed, index)
}

/// Hands out derived seeds in order, one per initialised tensor.
#[derive(Debug, Clone)]
pub struct SeedSequence {
    seed: u64,
    next: u64,
}

impl SeedSequence {
    /// A sequence from a model seed.
    pub fn new(seed: u64) -> Self {
        SeedSequence { seed, next: 0 }
    }
    /// The next seed.
    pub fn next_seed(&mut self) -> u64 {
        self.next += 1;
        derive_seed(self.seed, self.next)
    }
}
