//! Helpers the trainer's test files share.

use residual_train::data::{Dataset, Mnist};

/// The first `n` samples of an MNIST split.
pub struct Subset(pub Mnist, pub usize);

impl Dataset for Subset {
    fn len(&self) -> usize {
        self.1
    }
    fn shape(&self) -> [usize; 3] {
        self.0.shape()
    }
    fn classes(&self) -> usize {
        10
    }
    fn get(&self, i: usize) -> residual_tensor::Result<(Vec<f32>, usize)> {
        self.0.get(i)
    }
}
