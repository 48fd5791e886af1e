//! Antialiased bicubic resizing, as PyTorch's
//! `F.interpolate(x, size, mode="bicubic", antialias=True, align_corners=False)`
//! (Pillow's filter, Keys' cubic with `a = -0.5`, widened by the scale when
//! shrinking), which timm uses to resample a ViT's position embedding to a new
//! grid. Each axis is one small matrix of weights; the resize is two matrix
//! products, so it differentiates and runs on every backend.

use residual_tensor::{Device, Error, Result, Tensor};

/// Keys' cubic convolution kernel with `a = -0.5` (PyTorch's antialiased
/// bicubic filter).
fn cubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A
    } else {
        0.0
    }
}

/// The `[output, input]` weights of an antialiased bicubic resize of one axis
/// (PyTorch's `_compute_indices_min_size_weights_aa`): output `i` is centred at
/// `scale * (i + 0.5)` with `scale = input / output`, its filter support is
/// `2 * max(scale, 1)` on each side, and its weights are normalised to sum 1.
pub fn bicubic_aa_weights(input: usize, output: usize) -> Vec<f32> {
    let mut w = vec![0f32; output * input];
    let scale = input as f64 / output as f64;
    let support = 2.0 * scale.max(1.0);
    let inv = if scale >= 1.0 { 1.0 / scale } else { 1.0 };
    for i in 0..output {
        let center = scale * (i as f64 + 0.5);
        // Truncation toward zero, as PyTorch's int64 casts.
        let lo = ((center - support + 0.5) as i64).max(0) as usize;
        let hi = ((center + support + 0.5) as i64).clamp(0, input as i64) as usize;
        let taps: Vec<f64> = (lo..hi)
            .map(|j| cubic((j as f64 - center + 0.5) * inv))
            .collect();
        let total: f64 = taps.iter().sum();
        for (j, t) in (lo..hi).zip(taps) {
            w[i * input + j] = if total != 0.0 {
                (t / total) as f32
            } else {
                t as f32
            };
        }
    }
    w
}

/// Resizes `x: [..., h, w]` to `[..., out_h, out_w]` (antialiased bicubic,
/// as `F.interpolate(..., mode="bicubic", antialias=True)`).
pub fn resize_bicubic_antialias(x: &Tensor, (out_h, out_w): (usize, usize)) -> Result<Tensor> {
    let r = x.rank();
    if r < 2 || x.dims()[r - 2] == 0 || x.dims()[r - 1] == 0 || out_h == 0 || out_w == 0 {
        return Err(Error::shape(
            "resize_bicubic_antialias",
            format!(
                "expected a non-empty [..., H, W] input and a non-empty size, got {} to {out_h}x{out_w}",
                x.shape()
            ),
        ));
    }
    let (h, w) = (x.dims()[r - 2], x.dims()[r - 1]);
    let dev: &Device = x.device();
    // rows: [out_h, h] @ x: [..., h, w] -> [..., out_h, w]
    let rows = Tensor::from_vec(bicubic_aa_weights(h, out_h), [out_h, h], dev)?;
    // cols: [..., out_h, w] @ ([out_w, w])^T -> [..., out_h, out_w]
    let cols = Tensor::from_vec(bicubic_aa_weights(w, out_w), [out_w, w], dev)?;
    rows.matmul(x)?.matmul_nt(&cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_is_the_identity_and_rows_sum_to_one() {
        let w = bicubic_aa_weights(5, 5);
        for i in 0..5 {
            for j in 0..5 {
                assert!((w[i * 5 + j] - f32::from(i == j)).abs() < 1e-6, "{i},{j}");
            }
        }
        for (inp, out) in [(7, 12), (12, 7), (14, 24), (24, 14)] {
            let w = bicubic_aa_weights(inp, out);
            for row in w.chunks(inp) {
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            }
        }
    }
}
