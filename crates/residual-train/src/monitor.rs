//! What the trainer watches every `log_every` steps: gradient flow by layer,
//! weight distributions and dead activations.

use crate::optim::Optimizer;
use residual_tensor::{Gradients, Result, Tensor};
use serde::Serialize;

/// One detailed record of a training step.
#[derive(Debug, Clone, Serialize)]
pub struct Monitors {
    /// Gradient norms of the weight layers (convolutions, classifier; weight
    /// and bias together), input to output.
    pub layer_grad_norms: Vec<(String, f32)>,
    /// Per-layer weight mean and standard deviation `(layer, mean, std)` of
    /// the weight tensors (rank >= 2).
    pub layer_weight_stats: Vec<(String, f32, f32)>,
    /// Fraction of exactly-zero outputs after the stem and each block (units
    /// a ReLU switched off), input to output.
    pub zero_activations: Vec<(String, f32)>,
}

/// The layer a parameter belongs to: its name without the last component.
fn layer_of(name: &str) -> String {
    name.rsplit_once('.').map_or(name, |(l, _)| l).to_string()
}

/// Gradient norm per weight layer (convolutions and the classifier, each
/// with its bias), input to output. Norm layers are left out: their tiny
/// scale / shift gradients between the convolutions would turn a plot of
/// gradient norm by depth into a zigzag.
pub fn layer_grad_norms(optimizer: &Optimizer, grads: &Gradients) -> Result<Vec<(String, f32)>> {
    // (layer, sum of squares, whether it holds a matrix / kernel)
    let mut out: Vec<(String, f64, bool)> = Vec::new();
    for (name, p) in optimizer.params() {
        let t = p.get();
        let Some(g) = grads.get(&t) else {
            continue;
        };
        let layer = layer_of(name);
        let sq: f64 = g.to_vec()?.iter().map(|&v| (v as f64) * (v as f64)).sum();
        let weight = t.rank() >= 2;
        match out.last_mut() {
            Some((l, s, w)) if *l == layer => {
                *s += sq;
                *w |= weight;
            }
            _ => out.push((layer, sq, weight)),
        }
    }
    Ok(out
        .into_iter()
        .filter(|e| e.2)
        .map(|(l, s, _)| (l, s.sqrt() as f32))
        .collect())
}

/// Mean and standard deviation of each layer's weight (conv and linear weights).
pub fn layer_weight_stats(optimizer: &Optimizer) -> Result<Vec<(String, f32, f32)>> {
    let mut out = Vec::new();
    for (name, p) in optimizer.params() {
        let w = p.get();
        if w.rank() < 2 {
            continue;
        }
        let v = w.to_vec()?;
        let n = v.len().max(1) as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        out.push((layer_of(name), mean as f32, var.sqrt() as f32));
    }
    Ok(out)
}

/// The fraction of exactly-zero values of each `(name, activation)`.
pub fn zero_fractions(taps: &[(String, Tensor)]) -> Result<Vec<(String, f32)>> {
    taps.iter()
        .map(|(name, t)| {
            let v = t.to_vec()?;
            let zeros = v.iter().filter(|&&x| x == 0.0).count();
            Ok((name.clone(), zeros as f32 / v.len().max(1) as f32))
        })
        .collect()
}
