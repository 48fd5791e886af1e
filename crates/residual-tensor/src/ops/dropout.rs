//! Dropout with a seeded, counter-based mask (the same on every backend).

use crate::{Error, Result, Tensor};

impl Tensor {
    /// Inverted dropout: zeroes each element with probability `p` and scales the
    /// rest by `1 / (1 - p)`. The mask is a pure function of `(seed, index)`, so
    /// the same seed gives the same mask; pass a new seed every step.
    pub fn dropout(&self, p: f32, seed: u64) -> Result<Tensor> {
        if self.is_half() {
            return self.to_f32()?.dropout(p, seed);
        }
        if !(0.0..1.0).contains(&p) {
            return Err(Error::arg(
                "dropout",
                format!("probability must be in [0, 1), got {p}"),
            ));
        }
        if p == 0.0 {
            return Ok(self.clone());
        }
        let s = self.device().backend().dropout(self.storage(), p, seed)?;
        Ok(Tensor::from_op(
            s,
            self.shape().clone(),
            self.device(),
            "dropout",
            &[self],
            move |dy| {
                let dx = dy.device().backend().dropout(dy.storage(), p, seed)?;
                Ok(vec![Some(Tensor::from_storage(
                    dx,
                    dy.shape().clone(),
                    dy.device(),
                )?)])
            },
        ))
    }
}
