//! torchvision's `RandomResizedCrop` box: a random part of the image, of a
//! random area and aspect ratio, that the decoder then resizes to the input
//! size. The sampler is torchvision's `RandomResizedCrop.get_params`, step for
//! step (ten attempts, then a centred fallback), with its random numbers drawn
//! from the sample's seed instead of torch's generator.

use residual_tensor::{rng, Error, Result};

/// Attempts at a box that fits before the centred fallback (torchvision's 10).
const ATTEMPTS: u64 = 10;

/// The ranges a random resized crop draws from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResizedCrop {
    /// Range of the box's area as a fraction of the image's.
    pub scale: [f64; 2],
    /// Range of the box's aspect ratio, width / height (drawn log-uniformly).
    pub ratio: [f64; 2],
}

/// A box in an image, in pixels: columns `x..x + width`, rows `y..y + height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropBox {
    /// First column.
    pub x: u32,
    /// First row.
    pub y: u32,
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
}

impl Default for ResizedCrop {
    /// torchvision's defaults: scale 0.08-1, ratio 3/4-4/3.
    fn default() -> Self {
        ResizedCrop {
            scale: [0.08, 1.0],
            ratio: [3.0 / 4.0, 4.0 / 3.0],
        }
    }
}

/// A uniform float in `[0, 1)` with 53 random bits.
fn unit(seed: u64, index: u64) -> f64 {
    (rng::hash64(seed, index) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// An integer in `0..n` (`n >= 1`).
fn below(seed: u64, index: u64, n: u32) -> u32 {
    (rng::hash64(seed, index) % n as u64) as u32
}

/// Python's `int(round(v))`: halves go to the even neighbour.
fn py_round(v: f64) -> i64 {
    v.round_ties_even() as i64
}

impl ResizedCrop {
    /// Checked ranges: `0 < scale[0] <= scale[1] <= 1` and `0 < ratio[0] <= ratio[1]`.
    pub fn new(scale: [f64; 2], ratio: [f64; 2]) -> Result<Self> {
        let scale_ok = 0.0 < scale[0] && scale[0] <= scale[1] && scale[1] <= 1.0;
        let ratio_ok = 0.0 < ratio[0] && ratio[0] <= ratio[1] && ratio[1].is_finite();
        if !scale_ok || !ratio_ok {
            return Err(Error::arg(
                "RandomResizedCrop",
                format!(
                    "expected 0 < scale min <= max <= 1 and 0 < ratio min <= max, \
                     got scale {scale:?}, ratio {ratio:?}"
                ),
            ));
        }
        Ok(ResizedCrop { scale, ratio })
    }

    /// The box for an image of `width` x `height` (both at least 1), a pure
    /// function of `seed`.
    pub fn sample(&self, width: u32, height: u32, seed: u64) -> CropBox {
        let area = width as f64 * height as f64;
        let [log_lo, log_hi] = [self.ratio[0].ln(), self.ratio[1].ln()];
        for attempt in 0..ATTEMPTS {
            let draw = |k: u64| unit(seed, 4 * attempt + k);
            let target = area * (self.scale[0] + (self.scale[1] - self.scale[0]) * draw(0));
            let aspect = (log_lo + (log_hi - log_lo) * draw(1)).exp();
            let w = py_round((target * aspect).sqrt());
            let h = py_round((target / aspect).sqrt());
            if 0 < w && w <= width as i64 && 0 < h && h <= height as i64 {
                let (w, h) = (w as u32, h as u32);
                let y = below(seed, 4 * attempt + 2, height - h + 1);
                let x = below(seed, 4 * attempt + 3, width - w + 1);
                return CropBox {
                    x,
                    y,
                    width: w,
                    height: h,
                };
            }
        }
        // No attempt fit: the centred box of the whole image, its aspect
        // ratio clamped to the range.
        let in_ratio = width as f64 / height as f64;
        let (w, h) = if in_ratio < self.ratio[0] {
            (
                width,
                (py_round(width as f64 / self.ratio[0]) as u32).clamp(1, height),
            )
        } else if in_ratio > self.ratio[1] {
            (
                (py_round(height as f64 * self.ratio[1]) as u32).clamp(1, width),
                height,
            )
        } else {
            (width, height)
        };
        CropBox {
            x: (width - w) / 2,
            y: (height - h) / 2,
            width: w,
            height: h,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_fit_and_follow_the_ranges() {
        let rc = ResizedCrop::default();
        let mut xs = std::collections::BTreeSet::new();
        for seed in 0..2000 {
            let b = rc.sample(200, 100, seed);
            assert!(b.width >= 1 && b.height >= 1);
            assert!(b.x + b.width <= 200 && b.y + b.height <= 100, "{b:?}");
            // Rounding moves area and aspect a little from the drawn values.
            let frac = (b.width * b.height) as f64 / 20000.0;
            assert!((0.075..=1.0).contains(&frac), "{b:?}");
            let aspect = b.width as f64 / b.height as f64;
            assert!((0.70..=1.40).contains(&aspect), "{b:?}");
            assert_eq!(b, rc.sample(200, 100, seed), "a pure function of the seed");
            xs.insert(b.x);
        }
        assert!(xs.len() > 50, "offsets vary with the seed: {}", xs.len());
        // A 1x1 image has one box.
        let one = CropBox {
            x: 0,
            y: 0,
            width: 1,
            height: 1,
        };
        assert_eq!(rc.sample(1, 1, 3), one);
    }

    #[test]
    fn bad_ranges_are_errors() {
        for (scale, ratio) in [
            ([0.0, 1.0], [0.75, 1.33]),
            ([0.5, 0.2], [0.75, 1.33]),
            ([0.5, 1.5], [0.75, 1.33]),
            ([0.08, 1.0], [1.33, 0.75]),
            ([0.08, 1.0], [-1.0, 1.0]),
        ] {
            let err = ResizedCrop::new(scale, ratio).unwrap_err().to_string();
            assert!(err.contains("scale") && err.contains("ratio"), "{err}");
        }
        assert!(ResizedCrop::new([0.08, 1.0], [0.75, 4.0 / 3.0]).is_ok());
    }
}
