//! torchvision's `ElasticTransform(alpha, sigma)` on CHW images (Simard et
//! al., 2003): every pixel moves by its own displacement, a field of uniform
//! noise in [-1, 1] smoothed by a Gaussian of standard deviation `sigma`
//! pixels and scaled as torchvision scales it: by `alpha / h` (x) and
//! `alpha / w` (y) in the normalised [-1, 1] coordinates of `grid_sample`,
//! which span `w / 2` and `h / 2` pixels per unit, so `alpha w / (2 h)`
//! pixels horizontally and `alpha h / (2 w)` vertically per unit of the
//! smoothed noise (`alpha / 2` both ways on a square image). Resampled
//! bilinearly with zeros outside, one field for every channel.

use super::affine::bilinear;
use residual_tensor::rng;

/// The stream offsets of the two noise fields within a sample's seed (far
/// from the few small indices the other transforms draw).
const DX_STREAM: u64 = 1 << 40;
const DY_STREAM: u64 = 2 << 40;

/// One sampled displacement field of an `h x w` image, in pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Elastic {
    /// Horizontal displacement of each output pixel, `[h, w]`.
    pub dx: Vec<f32>,
    /// Vertical displacement of each output pixel, `[h, w]`.
    pub dy: Vec<f32>,
    /// Height and width.
    pub hw: (usize, usize),
}

impl Elastic {
    /// The field of one image: uniform noise from `seed`, smoothed by
    /// [`gaussian_kernel`]`(sigma)` with reflected borders (torchvision's
    /// `gaussian_blur`), times `alpha w / (2 h)` (x) and `alpha h / (2 w)` (y).
    pub fn sample(seed: u64, alpha: f32, sigma: f32, hw: (usize, usize)) -> Self {
        let (h, w) = hw;
        let field = |stream: u64, pixels_per_unit: f32| -> Vec<f32> {
            let mut f: Vec<f32> = (0..(h * w) as u64)
                .map(|i| 2.0 * rng::uniform_at(seed, stream + i) - 1.0)
                .collect();
            if sigma > 0.0 {
                blur(&mut f, hw, &gaussian_kernel(sigma));
            }
            f.iter_mut().for_each(|v| *v *= pixels_per_unit);
            f
        };
        let (hf, wf) = (h as f32, w as f32);
        Elastic {
            dx: field(DX_STREAM, alpha * wf / (2.0 * hf)),
            dy: field(DY_STREAM, alpha * hf / (2.0 * wf)),
            hw,
        }
    }

    /// Warps `img: [c, h, w]` in place: output pixel `(y, x)` takes the
    /// input at `(y + dy, x + dx)`, bilinear, zero outside.
    pub fn apply(&self, img: &mut [f32], shape: [usize; 3]) {
        let [c, h, w] = shape;
        debug_assert_eq!((h, w), self.hw, "the field was sampled for another size");
        let src = img.to_vec();
        for ch in 0..c {
            let plane = &src[ch * h * w..(ch + 1) * h * w];
            let out = &mut img[ch * h * w..(ch + 1) * h * w];
            for y in 0..h {
                for x in 0..w {
                    let i = y * w + x;
                    out[i] = bilinear(plane, (h, w), y as f32 + self.dy[i], x as f32 + self.dx[i]);
                }
            }
        }
    }
}

/// torchvision's Gaussian kernel of `ElasticTransform`: `int(8 sigma + 1)`
/// taps, made odd, `exp(-x^2 / (2 sigma^2))` at the integer offsets from the
/// centre, normalised to sum 1.
pub fn gaussian_kernel(sigma: f32) -> Vec<f32> {
    let mut taps = (8.0 * sigma + 1.0) as usize;
    if taps.is_multiple_of(2) {
        taps += 1;
    }
    let half = (taps - 1) as f32 / 2.0;
    let k: Vec<f32> = (0..taps)
        .map(|i| (-0.5 * ((i as f32 - half) / sigma).powi(2)).exp())
        .collect();
    let sum: f32 = k.iter().sum();
    k.into_iter().map(|v| v / sum).collect()
}

/// Index `i` of a line of `n` samples mirrored at its ends without repeating
/// the edge (torch's "reflect" padding), folded as often as a kernel wider
/// than the line needs.
fn reflect(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let m = i.rem_euclid(period);
    (if m < n as isize { m } else { period - m }) as usize
}

/// Convolves `field: [h, w]` with `kernel` along rows, then columns, with
/// reflected borders.
fn blur(field: &mut [f32], (h, w): (usize, usize), kernel: &[f32]) {
    let half = (kernel.len() / 2) as isize;
    let tmp = field.to_vec();
    for y in 0..h {
        for x in 0..w {
            field[y * w + x] = kernel
                .iter()
                .enumerate()
                .map(|(k, c)| c * tmp[y * w + reflect(x as isize + k as isize - half, w)])
                .sum();
        }
    }
    let tmp = field.to_vec();
    for y in 0..h {
        for x in 0..w {
            field[y * w + x] = kernel
                .iter()
                .enumerate()
                .map(|(k, c)| c * tmp[reflect(y as isize + k as isize - half, h) * w + x])
                .sum();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_is_torchvisions() {
        // torchvision: kernel_size = int(8 * 4 + 1) = 33; sigma 0.5: int(5) = 5.
        assert_eq!(gaussian_kernel(4.0).len(), 33);
        assert_eq!(gaussian_kernel(0.5).len(), 5);
        // sigma 0.875: int(8) = 8, even, so 9.
        assert_eq!(gaussian_kernel(0.875).len(), 9);
        let k = gaussian_kernel(1.0);
        assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        // Symmetric, peaked at the centre, exp(-1/2) between neighbours 0 and 1.
        assert_eq!(k.len(), 9);
        assert!((k[4 + 1] / k[4] - (-0.5f32).exp()).abs() < 1e-6);
        assert_eq!(k[3], k[5]);
    }

    #[test]
    fn reflection_mirrors_without_repeating_the_edge() {
        let line: Vec<usize> = (-4..8).map(|i| reflect(i, 4)).collect();
        assert_eq!(line, vec![2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1]);
        assert_eq!(reflect(-3, 1), 0);
    }

    #[test]
    fn a_constant_field_blurs_to_itself() {
        let mut f = vec![0.25; 5 * 7];
        blur(&mut f, (5, 7), &gaussian_kernel(4.0));
        assert!(f.iter().all(|v| (v - 0.25).abs() < 1e-6));
    }

    #[test]
    fn a_whole_pixel_displacement_shifts_with_zeros_coming_in() {
        let img: Vec<f32> = (1..=12).map(|i| i as f32).collect(); // [1, 3, 4]
        let mut out = img.clone();
        Elastic {
            dx: vec![1.0; 12],
            dy: vec![0.0; 12],
            hw: (3, 4),
        }
        .apply(&mut out, [1, 3, 4]);
        assert_eq!(out, vec![2., 3., 4., 0., 6., 7., 8., 0., 10., 11., 12., 0.]);
    }

    #[test]
    fn zero_alpha_keeps_the_image() {
        let img: Vec<f32> = (0..2 * 6 * 6).map(|i| i as f32).collect();
        let mut out = img.clone();
        Elastic::sample(7, 0.0, 4.0, (6, 6)).apply(&mut out, [2, 6, 6]);
        assert_eq!(out, img);
    }

    #[test]
    fn the_field_follows_the_seed_and_scales_with_alpha() {
        let a = Elastic::sample(3, 34.0, 4.0, (28, 28));
        assert_eq!(a, Elastic::sample(3, 34.0, 4.0, (28, 28)));
        assert_ne!(a.dx, Elastic::sample(4, 34.0, 4.0, (28, 28)).dx);
        assert_ne!(a.dx, a.dy);
        let b = Elastic::sample(3, 68.0, 4.0, (28, 28));
        for (x, y) in a.dx.iter().zip(&b.dx) {
            assert!((2.0 * x - y).abs() < 1e-5);
        }
        // Smoothed uniform noise: displacements of a pixel or two at most,
        // not the +-17 px of the raw noise times alpha / 2.
        let rms = (a.dx.iter().map(|v| v * v).sum::<f32>() / a.dx.len() as f32).sqrt();
        assert!(rms > 0.05 && rms < 3.0, "rms displacement {rms} px");
    }

    #[test]
    fn a_wide_image_moves_more_across_than_down_as_torchvision_scales_it() {
        // 8 x 32, alpha 10: torchvision scales the blurred noise by alpha / h
        // in x and alpha / w in y, in grid units of w / 2 and h / 2 pixels:
        // 10 * 32 / 16 = 20 px per unit across, 10 * 8 / 64 = 1.25 down.
        let (h, w) = (8, 32);
        let wide = Elastic::sample(5, 10.0, 2.0, (h, w));
        let noise = |stream: u64| -> Vec<f32> {
            let mut f: Vec<f32> = (0..(h * w) as u64)
                .map(|i| 2.0 * rng::uniform_at(5, stream + i) - 1.0)
                .collect();
            blur(&mut f, (h, w), &gaussian_kernel(2.0));
            f
        };
        for (got, n) in wide.dx.iter().zip(noise(DX_STREAM)) {
            assert!(
                (got - 20.0 * n).abs() < 1e-5 * (1.0 + got.abs()),
                "{got} vs {}",
                20.0 * n
            );
        }
        for (got, n) in wide.dy.iter().zip(noise(DY_STREAM)) {
            assert!(
                (got - 1.25 * n).abs() < 1e-5 * (1.0 + got.abs()),
                "{got} vs {}",
                1.25 * n
            );
        }
    }
}
