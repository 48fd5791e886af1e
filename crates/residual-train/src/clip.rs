//! Gradient clipping, as `torch.nn.utils.clip_grad_norm_` / `clip_grad_value_`.

use rayon::prelude::*;
use residual_tensor::{Gradients, Result};

/// Elements per chunk of the parallel sum of squares.
const CHUNK: usize = 1 << 15;

/// f64 lanes of a chunk's sum: independent additions the compiler
/// vectorises, where one running sum waits on each add in turn.
const LANES: usize = 8;

/// `sum(v^2)` in f64: chunk sums in parallel (each over [`LANES`] lanes,
/// added in lane order), added in chunk order.
fn sum_of_squares(v: &[f32]) -> f64 {
    let chunks: Vec<f64> = v.par_chunks(CHUNK).map(chunk_sum_of_squares).collect();
    chunks.iter().sum()
}

/// `sum(c^2)` of one chunk in [`LANES`] f64 lanes.
fn chunk_sum_of_squares(c: &[f32]) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let runs = c.chunks_exact(LANES);
    let tail = runs.remainder();
    for run in runs {
        for (s, &x) in lanes.iter_mut().zip(run) {
            *s += (x as f64) * (x as f64);
        }
    }
    for (s, &x) in lanes.iter_mut().zip(tail) {
        *s += (x as f64) * (x as f64);
    }
    lanes.iter().sum()
}

/// Scales all gradients so that their global L2 norm is at most `max_norm`
/// (factor `max_norm / (norm + 1e-6)`, applied only when it is below 1).
/// Returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut Gradients, max_norm: f32) -> Result<f32> {
    // Squared norms summed in tensor-id order (the map's order changes from
    // run to run), each over fixed chunks summed in order, so the total, and
    // the run, is reproducible to the bit whatever the thread count.
    let mut squares = Vec::with_capacity(grads.len());
    for (id, g) in grads.iter() {
        // Read where it lies (no copy of the model's gradients each step).
        squares.push((*id, g.with_f32s(sum_of_squares)?));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The lane sums give the sum of squares of one running f64 sum, to
    /// f64 rounding, over several chunks with a tail shorter than a lane.
    #[test]
    fn lane_sums_of_squares_match_one_running_sum() {
        let v: Vec<f32> = (0..2 * CHUNK + 13)
            .map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5)
            .collect();
        let running: f64 = v.iter().map(|&x| (x as f64) * (x as f64)).sum();
        let lanes = sum_of_squares(&v);
        assert!(
            (lanes - running).abs() <= 1e-12 * running,
            "{lanes} vs {running}"
        );
    }
}
