//! Gradient clipping, as `torch.nn.utils.clip_grad_norm_` / `clip_grad_value_`.

use residual_tensor::{Gradients, Result};

/// Scales all gradients so that their global L2 norm is at most `max_norm`
/// (factor `max_norm / (norm + 1e-6)`, applied only when it is below 1).
/// Returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut Gradients, max_norm: f32) -> Result<f32> {
    // Squared norms summed in tensor-id order (the map's order changes from
    // run to run), so the total, and the run, is reproducible to the bit.
    let mut squares = Vec::with_capacity(grads.len());
    for (id, g) in grads.iter() {
        squares.push((
            *id,
            g.to_vec()?
                .iter()
                .map(|&v| (v as f64) * (v as f64))
                .sum::<f64>(),
        ));
    }
    squares.sort_by_key(|(id, _)| *id);
    let total: f64 = squares.iter().map(|(_, s)| s).sum();
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
