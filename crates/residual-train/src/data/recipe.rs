//! How an image folder is read for training, chosen from its images when the
//! user does not say: [`ImageRecipe::choose`]. Small images (icons, digits,
//! CIFAR-like 32x32, Tiny ImageNet's 64x64) train at their own size with
//! padded random crops and flips, as the CIFAR recipes do; large ones get
//! ImageNet's 224 recipe (random resized crops, held-out images resized to
//! 256 and center-cropped to 224).

use super::{ResizedCrop, Transform};
use residual_tensor::{Error, Result};

/// Images whose median shorter side is at most this many pixels are small:
/// they train at their own size with padded random crops.
pub const SMALL_IMAGE_MAX_SIDE: u32 = 64;
/// The input side of the large-image recipe (ImageNet's).
pub const LARGE_IMAGE_SIZE: u32 = 224;
/// The smallest input side any recipe uses (the ResNets' stem and four
/// stride-2 stages need at least this much to keep a spatial extent).
pub const MIN_IMAGE_SIZE: u32 = 16;
/// The largest input side `--image-size` accepts.
pub const MAX_IMAGE_SIZE: u32 = 1024;

/// The random augmentation of the training images.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Augment {
    /// Zero-pad each side by `padding` pixels and crop back at a random
    /// offset (torchvision's `RandomCrop(size, padding)`), then flip.
    PaddedCrop {
        /// Padding on each side, in pixels.
        padding: usize,
    },
    /// A random box of the decoded image resized to the input size
    /// (torchvision's `RandomResizedCrop`), then flip.
    ResizedCrop(ResizedCrop),
}

/// The input size and augmentation an image folder trains with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageRecipe {
    /// Side of the square input.
    pub size: u32,
    /// Held-out images: the shorter side resized to this, then the center
    /// `size` x `size` kept.
    pub resize: u32,
    /// Training augmentation.
    pub augment: Augment,
    /// Whether `size` was chosen from the images (no `--image-size`).
    pub size_from_data: bool,
    /// The images' median shorter side, in pixels, that the choice saw.
    pub median_short_side: u32,
}

impl ImageRecipe {
    /// The recipe for images whose median shorter side is
    /// `median_short_side`, with the size and crop scale the user gave, if
    /// any.
    ///
    /// - Size: `size` when given (checked to be in 16..=1024), else the
    ///   images' own for small images (at most [`SMALL_IMAGE_MAX_SIDE`], at
    ///   least [`MIN_IMAGE_SIZE`]), else [`LARGE_IMAGE_SIZE`].
    /// - Held-out resize: the size itself for small images (a center crop of
    ///   the image as it is), size * 256 / 224 for large ones (ImageNet's).
    /// - Augmentation: with `crop_scale`, random resized crops of that area
    ///   range (aspect 3/4-4/3); else padded crops (an eighth of the size on
    ///   each side) for small images and torchvision's random resized crops
    ///   (area 8-100%) for large ones. Flips follow either.
    pub fn choose(
        median_short_side: u32,
        size: Option<u32>,
        crop_scale: Option<[f64; 2]>,
    ) -> Result<Self> {
        if let Some(s) = size.filter(|s| !(MIN_IMAGE_SIZE..=MAX_IMAGE_SIZE).contains(s)) {
            return Err(Error::arg(
                "--image-size",
                format!("expected {MIN_IMAGE_SIZE}..={MAX_IMAGE_SIZE}, got {s}"),
            ));
        }
        let small = median_short_side <= SMALL_IMAGE_MAX_SIDE;
        let size_from_data = size.is_none();
        let size = size.unwrap_or(if small {
            median_short_side.max(MIN_IMAGE_SIZE)
        } else {
            LARGE_IMAGE_SIZE
        });
        let resize = if small { size } else { size * 256 / 224 };
        let augment = match (crop_scale, small) {
            (Some(scale), _) => Augment::ResizedCrop(
                ResizedCrop::new(scale, ResizedCrop::default().ratio)
                    .map_err(|e| Error::arg("--crop-scale", e.to_string()))?,
            ),
            (None, true) => Augment::PaddedCrop {
                padding: (size as usize / 8).max(1),
            },
            (None, false) => Augment::ResizedCrop(ResizedCrop::default()),
        };
        Ok(ImageRecipe {
            size,
            resize,
            augment,
            size_from_data,
            median_short_side,
        })
    }

    /// The per-sample transforms of training images before normalisation
    /// (a random resized crop is done while decoding, so only its flip is
    /// here).
    pub fn train_transforms(&self) -> Vec<Transform> {
        match self.augment {
            Augment::PaddedCrop { padding } => {
                vec![Transform::RandomCrop { padding }, Transform::HorizontalFlip]
            }
            Augment::ResizedCrop(_) => vec![Transform::HorizontalFlip],
        }
    }

    /// One line saying what was chosen and why, for the front end to print.
    pub fn describe(&self) -> String {
        let why = match (
            self.size_from_data,
            self.median_short_side <= SMALL_IMAGE_MAX_SIDE,
        ) {
            (true, true) => format!(
                "the images are small (median shorter side {} px): training at their own size",
                self.median_short_side
            ),
            (true, false) => format!(
                "the images are large (median shorter side {} px): ImageNet's recipe",
                self.median_short_side
            ),
            (false, _) => "--image-size".to_string(),
        };
        let augment = match self.augment {
            Augment::PaddedCrop { padding } => {
                format!("random crops padded by {padding} px and flips")
            }
            Augment::ResizedCrop(rc) => format!(
                "random resized crops (area {}-{}%) and flips",
                rc.scale[0] * 100.0,
                rc.scale[1] * 100.0
            ),
        };
        format!(
            "input {s}x{s} ({why}); training: {augment}; held out: resized to {r}, center {s}x{s}",
            s = self.size,
            r = self.resize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_images_train_at_their_own_size_with_padded_crops() {
        let r = ImageRecipe::choose(32, None, None).unwrap();
        assert_eq!((r.size, r.resize), (32, 32));
        assert_eq!(r.augment, Augment::PaddedCrop { padding: 4 });
        assert!(r.size_from_data);
        let tiny = ImageRecipe::choose(8, None, None).unwrap();
        assert_eq!((tiny.size, tiny.resize), (MIN_IMAGE_SIZE, MIN_IMAGE_SIZE));
    }

    #[test]
    fn large_images_get_imagenets_recipe() {
        let r = ImageRecipe::choose(375, None, None).unwrap();
        assert_eq!((r.size, r.resize), (224, 256));
        assert_eq!(r.augment, Augment::ResizedCrop(ResizedCrop::default()));
        assert_eq!(r.train_transforms(), vec![Transform::HorizontalFlip]);
    }

    #[test]
    fn the_users_size_and_crop_scale_win() {
        let r = ImageRecipe::choose(32, Some(64), Some([0.5, 1.0])).unwrap();
        assert_eq!((r.size, r.resize), (64, 64));
        assert_eq!(
            r.augment,
            Augment::ResizedCrop(ResizedCrop::new([0.5, 1.0], [0.75, 4.0 / 3.0]).unwrap())
        );
        assert!(!r.size_from_data);
    }

    #[test]
    fn bad_sizes_and_scales_are_refused_naming_the_flag() {
        let e = ImageRecipe::choose(32, Some(8), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--image-size") && e.contains("16..=1024"), "{e}");
        let e = ImageRecipe::choose(32, None, Some([0.9, 0.1]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--crop-scale"), "{e}");
    }
}
