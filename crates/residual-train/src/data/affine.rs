//! torchvision's `RandomAffine(degrees, translate, scale)` on CHW images: a
//! rotation about the centre, a scale and a translation, sampled per image,
//! resampled bilinearly with zeros outside the image (the background before
//! normalisation).

use residual_tensor::rng;

/// One sampled affine map: rotation `angle` (degrees, counter-clockwise as
/// torchvision's), translation `(tx, ty)` in pixels, `scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    /// Rotation, degrees.
    pub angle: f32,
    /// Horizontal translation, pixels.
    pub tx: f32,
    /// Vertical translation, pixels.
    pub ty: f32,
    /// Scale factor.
    pub scale: f32,
}

/// A uniform float in `[low, high)` from draw `k` of `seed`.
fn uniform(seed: u64, k: u64, low: f32, high: f32) -> f32 {
    low + (high - low) * rng::uniform_at(seed, k)
}

impl Affine {
    /// The map of one image: angle in `[-degrees, degrees]`, translation up
    /// to `translate` of the width and height, scale in `[scale.0, scale.1]`.
    pub fn sample(
        seed: u64,
        degrees: f32,
        translate: f32,
        scale: (f32, f32),
        hw: (usize, usize),
    ) -> Self {
        let (h, w) = hw;
        Affine {
            angle: uniform(seed, 11, -degrees, degrees),
            tx: uniform(seed, 12, -translate, translate) * w as f32,
            ty: uniform(seed, 13, -translate, translate) * h as f32,
            scale: uniform(seed, 14, scale.0, scale.1),
        }
    }

    /// Warps `img: [c, h, w]` in place: output pixel `p` takes the input at
    /// `A^-1 (p - centre - t) + centre`, bilinear, zero outside.
    pub fn apply(&self, img: &mut [f32], shape: [usize; 3]) {
        let [c, h, w] = shape;
        let (sin, cos) = self.angle.to_radians().sin_cos();
        let (cx, cy) = ((w as f32 - 1.0) / 2.0, (h as f32 - 1.0) / 2.0);
        let src = img.to_vec();
        for ch in 0..c {
            let plane = &src[ch * h * w..(ch + 1) * h * w];
            let out = &mut img[ch * h * w..(ch + 1) * h * w];
            for y in 0..h {
                for x in 0..w {
                    let (px, py) = (x as f32 - cx - self.tx, y as f32 - cy - self.ty);
                    // The inverse rotation (image y points down: a
                    // counter-clockwise turn on screen) and scale.
                    let sx = (cos * px - sin * py) / self.scale + cx;
                    let sy = (sin * px + cos * py) / self.scale + cy;
                    out[y * w + x] = bilinear(plane, (h, w), sy, sx);
                }
            }
        }
    }
}

/// `plane: [h, w]` read at the real position `(y, x)`, bilinear, zero
/// outside the image (torch's `grid_sample` with zeros padding, in pixel
/// coordinates).
pub(super) fn bilinear(plane: &[f32], (h, w): (usize, usize), y: f32, x: f32) -> f32 {
    let at = |y: isize, x: isize| -> f32 {
        if y < 0 || x < 0 || y >= h as isize || x >= w as isize {
            0.0
        } else {
            plane[y as usize * w + x as usize]
        }
    };
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (x0, y0) = (x0 as isize, y0 as isize);
    let top = at(y0, x0) * (1.0 - fx) + at(y0, x0 + 1) * fx;
    let bottom = at(y0 + 1, x0) * (1.0 - fx) + at(y0 + 1, x0 + 1) * fx;
    top * (1.0 - fy) + bottom * fy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Affine {
        Affine {
            angle: 0.0,
            tx: 0.0,
            ty: 0.0,
            scale: 1.0,
        }
    }

    #[test]
    fn the_identity_map_keeps_the_image() {
        let img: Vec<f32> = (0..2 * 5 * 7).map(|i| i as f32).collect();
        let mut out = img.clone();
        identity().apply(&mut out, [2, 5, 7]);
        assert_eq!(out, img);
    }

    #[test]
    fn a_whole_pixel_translation_shifts_with_zeros_coming_in() {
        let img: Vec<f32> = (1..=12).map(|i| i as f32).collect(); // [1, 3, 4]
        let mut out = img.clone();
        Affine {
            tx: 1.0,
            ty: 0.0,
            ..identity()
        }
        .apply(&mut out, [1, 3, 4]);
        assert_eq!(out, vec![0., 1., 2., 3., 0., 5., 6., 7., 0., 9., 10., 11.]);
        let mut out = img.clone();
        Affine {
            tx: 0.0,
            ty: -1.0,
            ..identity()
        }
        .apply(&mut out, [1, 3, 4]);
        assert_eq!(out, vec![5., 6., 7., 8., 9., 10., 11., 12., 0., 0., 0., 0.]);
    }

    #[test]
    fn ninety_degrees_turns_the_image_counter_clockwise() {
        // [1, 3, 3]: the top row's right end goes to the left column's top.
        let img: Vec<f32> = (1..=9).map(|i| i as f32).collect();
        let mut out = img.clone();
        Affine {
            angle: 90.0,
            ..identity()
        }
        .apply(&mut out, [1, 3, 3]);
        let rounded: Vec<f32> = out.iter().map(|v| (v * 1e4).round() / 1e4).collect();
        // torch.rot90(x, 1, (1, 2)) of [[1,2,3],[4,5,6],[7,8,9]]
        assert_eq!(rounded, vec![3., 6., 9., 2., 5., 8., 1., 4., 7.]);
    }

    #[test]
    fn scale_two_magnifies_about_the_centre() {
        // [1, 1, 5]: x' = 2 (x - 2) + 2, so out[x] = in[(x - 2) / 2 + 2].
        let img = vec![0., 1., 2., 3., 4.];
        let mut out = img.clone();
        Affine {
            scale: 2.0,
            ..identity()
        }
        .apply(&mut out, [1, 1, 5]);
        assert_eq!(out, vec![1., 1.5, 2., 2.5, 3.]);
    }

    #[test]
    fn samples_stay_in_their_ranges_and_follow_the_seed() {
        for seed in 0..200 {
            let a = Affine::sample(seed, 10.0, 0.1, (0.9, 1.1), (28, 28));
            assert!(a.angle.abs() <= 10.0 && a.tx.abs() <= 2.8 && a.ty.abs() <= 2.8);
            assert!((0.9..=1.1).contains(&a.scale));
            assert_eq!(a, Affine::sample(seed, 10.0, 0.1, (0.9, 1.1), (28, 28)));
        }
    }
}
