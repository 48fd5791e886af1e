//! Gradient clipping, as `torch.nn.utils.clip_grad_norm_` / `clip_grad_value_`.

use residual_tensor::{Gradients, Result};

/// Scales all gradients so that their global L2 norm is at most `max_norm`
/// (factor `max_norm / (norm + 1e-6)`, applied only when it is below 1).
/// Returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut Gradients, max_norm: f32) -> Result<f32> {
    let mut total = 0.0f64;
    for (_, g) in grads.iter() {
        total += g
            .to_vec()?
            .iter()
            .map(|&v| (v as f64) * (v as f64))
            .sum::<f64>();
    }
    let norm = total.sqrt() as f32;
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        for g in grads.values_mut() {
            *g = g.mul_scalar(coef)?;
        }
    }
    Ok(norm)
}

/// Clamps every gradient element to `[-clip, clip]`.
pub fn clip_grad_value(grads: &mut Gradients, clip: f32) -> Result<()> {
    for g in grads.values_mut() {
        *g = g.clamp(-clip.abs(), clip.abs())?;
    }
    Ok(())
}
