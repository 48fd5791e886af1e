//! Per-sample transforms on CHW images, seeded per sample and epoch.

use super::affine::Affine;
use super::elastic::Elastic;
use residual_tensor::rng;
use serde::{Deserialize, Serialize};

/// An image transform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Transform {
    /// torchvision's `RandomCrop(size, padding)`: zero-pad, then crop at a random offset.
    RandomCrop {
        /// Zero padding on each side.
        padding: usize,
    },
    /// Horizontal flip with probability 0.5.
    HorizontalFlip,
    /// torchvision's `RandomAffine`: rotation in `[-degrees, degrees]`,
    /// translation up to `translate` of the size, scale in `scale`; bilinear,
    /// zeros outside.
    RandomAffine {
        /// Largest rotation, degrees.
        degrees: f32,
        /// Largest translation, a fraction of the width and height.
        translate: f32,
        /// Scale range `(min, max)`.
        scale: (f32, f32),
    },
    /// torchvision's `ElasticTransform(alpha, sigma)`: per-pixel
    /// displacements of smoothed uniform noise (standard deviation `sigma`
    /// pixels, `alpha / 2` pixels per unit); bilinear, zeros outside.
    Elastic {
        /// Strength (torchvision's `alpha`).
        alpha: f32,
        /// Smoothness: the Gaussian's standard deviation in pixels.
        sigma: f32,
    },
    /// `(x - mean[c]) / std[c]`.
    Normalize {
        /// Per-channel mean.
        mean: Vec<f32>,
        /// Per-channel standard deviation.
        std: Vec<f32>,
    },
}

impl Transform {
    /// Whether the transform is random augmentation (training only), as opposed
    /// to preprocessing that evaluation applies too (normalisation).
    pub fn is_augmentation(&self) -> bool {
        !matches!(self, Transform::Normalize { .. })
    }

    /// Applies the transform to `img: [c, h, w]` with randomness from `seed`.
    pub fn apply(&self, img: &mut [f32], shape: [usize; 3], seed: u64) {
        let [c, h, w] = shape;
        match self {
            Transform::RandomCrop { padding } => {
                let p = *padding;
                let span = 2 * p + 1;
                let dy = (rng::hash64(seed, 1) % span as u64) as isize - p as isize;
                let dx = (rng::hash64(seed, 2) % span as u64) as isize - p as isize;
                let src = img.to_vec();
                for ch in 0..c {
                    for y in 0..h {
                        for x in 0..w {
                            let (sy, sx) = (y as isize + dy, x as isize + dx);
                            let inside =
                                sy >= 0 && sx >= 0 && (sy as usize) < h && (sx as usize) < w;
                            img[(ch * h + y) * w + x] = if inside {
                                src[(ch * h + sy as usize) * w + sx as usize]
                            } else {
                                0.0
                            };
                        }
                    }
                }
            }
            Transform::HorizontalFlip => {
                if rng::hash64(seed, 3) & 1 == 1 {
                    for row in img.chunks_mut(w) {
                        row.reverse();
                    }
                }
            }
            Transform::RandomAffine {
                degrees,
                translate,
                scale,
            } => Affine::sample(seed, *degrees, *translate, *scale, (h, w)).apply(img, shape),
            Transform::Elastic { alpha, sigma } => {
                Elastic::sample(seed, *alpha, *sigma, (h, w)).apply(img, shape)
            }
            Transform::Normalize { mean, std } => {
                for (ch, plane) in img.chunks_mut(h * w).enumerate() {
                    let (m, s) = (mean[ch % mean.len()], std[ch % std.len()]);
                    plane.iter_mut().for_each(|v| *v = (*v - m) / s);
                }
            }
        }
    }
}
