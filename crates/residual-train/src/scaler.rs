//! Dynamic loss scaling with PyTorch `GradScaler`'s semantics.

use residual_tensor::{Gradients, Result, Tensor};
use serde::{Deserialize, Serialize};

/// Scales the loss up so small f16 gradients do not flush to zero, unscales
/// the gradients before the step, skips steps whose gradients overflowed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradScaler {
    /// Current scale (initially 2^16).
    pub scale: f32,
    /// Growth after `growth_interval` clean steps (2).
    pub growth_factor: f32,
    /// Backoff on overflow (0.5).
    pub backoff_factor: f32,
    /// Clean steps before growing (2000).
    pub growth_interval: u32,
    /// Clean steps since the last growth or overflow.
    pub growth_tracker: u32,
}

impl Default for GradScaler {
    fn default() -> Self {
        GradScaler {
            scale: 65536.0,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 2000,
            growth_tracker: 0,
        }
    }
}

impl GradScaler {
    /// Divides every gradient by the scale in place; returns whether any was
    /// inf or NaN (then the optimizer step must be skipped).
    pub fn unscale(&self, grads: &mut Gradients) -> Result<bool> {
        let inv = 1.0 / self.scale;
        let mut found_inf = false;
        for g in grads.values_mut() {
            *g = g.mul_scalar(inv)?;
            if !found_inf {
                found_inf = has_non_finite(g)?;
            }
        }
        Ok(found_inf)
    }

    /// Updates the scale after a step: back off on overflow, grow after
    /// `growth_interval` clean steps.
    pub fn update(&mut self, found_inf: bool) {
        if found_inf {
            self.scale *= self.backoff_factor;
            self.growth_tracker = 0;
        } else {
            self.growth_tracker += 1;
            if self.growth_tracker == self.growth_interval {
                self.scale *= self.growth_factor;
                self.growth_tracker = 0;
            }
        }
    }
}

/// Whether `t` holds an inf or a NaN (read in place on the CPU).
pub fn has_non_finite(t: &Tensor) -> Result<bool> {
    t.with_f32s(|v| v.iter().any(|v| !v.is_finite()))
}

/// Whether any gradient holds an inf or a NaN.
pub fn any_non_finite(grads: &Gradients) -> Result<bool> {
    for (_, g) in grads.iter() {
        if has_non_finite(g)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The gradients of `loss` for an optimizer step, through `scaler` when there
/// is one: the loss is scaled before the backward pass and the gradients
/// unscaled after it. The flag says whether a gradient overflowed (always
/// false without a scaler); the step must then be skipped.
pub fn backward(loss: &Tensor, scaler: Option<&GradScaler>) -> Result<(Gradients, bool)> {
    match scaler {
        None => Ok((loss.backward()?, false)),
        Some(s) => {
            let mut grads = loss.mul_scalar(s.scale)?.backward()?;
            let overflow = s.unscale(&mut grads)?;
            Ok((grads, overflow))
        }
    }
}
