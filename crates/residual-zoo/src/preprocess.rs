//! How a model's images are prepared for evaluation (timm's `pretrained_cfg`
//! data settings): normalisation, resize filter and center-crop fraction.

/// The resize filter of evaluation preprocessing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    /// Bilinear (torchvision's ImageNet recipe).
    Bilinear,
    /// Bicubic (timm's ViTs).
    Bicubic,
}

/// Evaluation preprocessing: resize the shorter side to
/// `floor(size / crop_pct)` with `interpolation`, center-crop `size`, scale to
/// [0, 1], then `(x - mean) / std` per channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preprocess {
    /// Per-channel mean (RGB).
    pub mean: [f32; 3],
    /// Per-channel standard deviation (RGB).
    pub std: [f32; 3],
    /// The resize filter.
    pub interpolation: Interpolation,
    /// The crop's share of the resized shorter side (0.875 = 224 of 256).
    pub crop_pct: f32,
    /// The input size the model was made for.
    pub input_size: u32,
}

impl Preprocess {
    /// torchvision's ImageNet evaluation: resize 256, crop 224, bilinear,
    /// ImageNet mean / std.
    pub const TORCHVISION: Preprocess = Preprocess {
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
        interpolation: Interpolation::Bilinear,
        crop_pct: 0.875,
        input_size: 224,
    };

    /// timm's ViT hybrids: mean and std 0.5, bicubic, crop 0.9 at 224 and
    /// 1.0 at 384.
    pub const fn timm_vit(input_size: u32) -> Preprocess {
        Preprocess {
            mean: [0.5; 3],
            std: [0.5; 3],
            interpolation: Interpolation::Bicubic,
            crop_pct: if input_size >= 384 { 1.0 } else { 0.9 },
            input_size,
        }
    }

    /// The shorter side an image is resized to before a `size` crop:
    /// `floor(size / crop_pct)` (timm's `transforms_factory`).
    pub fn resize_for(&self, size: u32) -> u32 {
        ((size as f64 / self.crop_pct as f64) + 1e-9).floor() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::Preprocess;

    #[test]
    fn resize_sides_are_timms_and_torchvisions() {
        assert_eq!(Preprocess::TORCHVISION.resize_for(224), 256);
        assert_eq!(Preprocess::timm_vit(224).resize_for(224), 248);
        assert_eq!(Preprocess::timm_vit(384).resize_for(384), 384);
    }
}
