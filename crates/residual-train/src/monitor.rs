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
    /// Histograms of each parameter and of its gradient, tagged
    /// `weights/<param>` and `grads/<param>`, in parameter order.
    pub histograms: Vec<(String, Histogram)>,
}

/// A histogram of a tensor's values, with the fields of TensorBoard's
/// `HistogramProto`: [`Histogram::BUCKETS`] equal-width buckets over the
/// finite values' [min, max]; bucket `i` ends at `bucket_limit[i]` (the last
/// at `max`). NaN and infinities are left out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Histogram {
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Number of values.
    pub num: f64,
    /// Sum of the values.
    pub sum: f64,
    /// Sum of their squares.
    pub sum_squares: f64,
    /// The right edge of each bucket.
    pub bucket_limit: Vec<f64>,
    /// The count of each bucket.
    pub bucket: Vec<f64>,
}

impl Histogram {
    /// Buckets per histogram (`tf.summary.histogram`'s default).
    pub const BUCKETS: usize = 30;

    /// The histogram of `values`' finite entries (one bucket when they are
    /// all equal, or none is finite).
    pub fn of(values: &[f32]) -> Histogram {
        let finite = || values.iter().filter(|v| v.is_finite()).map(|&v| v as f64);
        let (mut min, mut max, mut num, mut sum, mut sum_squares) =
            (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0.0, 0.0);
        for v in finite() {
            min = min.min(v);
            max = max.max(v);
            num += 1.0;
            sum += v;
            sum_squares += v * v;
        }
        if num == 0.0 {
            (min, max) = (0.0, 0.0);
        }
        let n = if max > min { Self::BUCKETS } else { 1 };
        let width = (max - min) / n as f64;
        let mut bucket_limit: Vec<f64> = (1..n).map(|i| min + width * i as f64).collect();
        bucket_limit.push(max);
        let mut bucket = vec![0.0; n];
        for v in finite() {
            let i = if width > 0.0 {
                ((v - min) / width) as usize
            } else {
                0
            };
            bucket[i.min(n - 1)] += 1.0;
        }
        Histogram {
            min,
            max,
            num,
            sum,
            sum_squares,
            bucket_limit,
            bucket,
        }
    }
}

/// Histograms of each parameter (`weights/<name>`) and its gradient
/// (`grads/<name>`), in parameter order.
pub fn histograms(optimizer: &Optimizer, grads: &Gradients) -> Result<Vec<(String, Histogram)>> {
    let mut out = Vec::new();
    for (name, p) in optimizer.params() {
        let t = p.get();
        out.push((format!("weights/{name}"), Histogram::of(&t.to_vec()?)));
        if let Some(g) = grads.get(&t) {
            out.push((format!("grads/{name}"), Histogram::of(&g.to_vec()?)));
        }
    }
    Ok(out)
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
        let sq: f64 = g.with_f32s(|v| v.iter().map(|&v| (v as f64) * (v as f64)).sum())?;
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

#[cfg(test)]
mod tests {
    use super::Histogram;

    #[test]
    fn histogram_buckets() {
        let values: Vec<f32> = (0..=30)
            .map(|i| i as f32)
            .chain([f32::NAN, f32::INFINITY])
            .collect();
        let h = Histogram::of(&values);
        assert_eq!((h.min, h.max, h.num), (0.0, 30.0, 31.0));
        assert_eq!(h.sum, 465.0);
        assert_eq!(h.bucket_limit.len(), Histogram::BUCKETS);
        assert_eq!(h.bucket_limit[0], 1.0);
        assert_eq!(*h.bucket_limit.last().unwrap(), 30.0);
        // One value per bucket, the last holding 29 and the maximum.
        assert!(h.bucket[..29].iter().all(|&c| c == 1.0));
        assert_eq!(h.bucket[29], 2.0);

        let flat = Histogram::of(&[2.0; 5]);
        assert_eq!((flat.bucket_limit, flat.bucket), (vec![2.0], vec![5.0]));
        let empty = Histogram::of(&[f32::NAN]);
        assert_eq!((empty.num, empty.bucket), (0.0, vec![0.0]));
    }
}
