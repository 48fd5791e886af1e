//! `--data` and its companions: which dataset, its splits and preprocessing.

use residual_tensor::Error;
use residual_train::data::{Cifar, CifarKind, Dataset, ImageFolder, Mnist, ResizedCrop, Transform};
use std::path::PathBuf;
use std::sync::Arc;

/// Train and test splits.
pub type Splits = (Arc<dyn Dataset>, Arc<dyn Dataset>);

/// The data flags shared by `train` and `eval`.
#[derive(clap::Args, Clone)]
pub struct DataArgs {
    /// Data: `mnist` (the digits shipped in the repository), `mnist:DIR` (IDX files, gzipped
    /// or not), `cifar10:DIR` / `cifar100:DIR` (the unpacked binary releases) or
    /// `imagefolder:DIR` (DIR/CLASS/*.jpg|png; 10% of each class held out unless --val is given).
    #[arg(long, default_value = "mnist")]
    pub data: String,
    /// With imagefolder: a separate held-out folder (same class folders).
    #[arg(long)]
    pub val: Option<PathBuf>,
    /// With imagefolder: side of the square input. Held-out images are resized to
    /// size * 256 / 224 on the shorter side and center-cropped (224 -> 256 then 224);
    /// training images are random resized crops (torchvision's RandomResizedCrop:
    /// area 8-100%, aspect 3/4-4/3) resized to size, flipped at random.
    #[arg(long, default_value_t = 224)]
    pub image_size: u32,
}

/// Seed of the imagefolder held-out split: fixed, so `train` and `eval` agree.
const SPLIT_SEED: u64 = 0x5eed;

impl DataArgs {
    fn kind(&self) -> &str {
        self.data.split(':').next().unwrap_or("")
    }

    /// The train and test splits.
    pub fn splits(&self) -> Result<Splits, Error> {
        let (kind, dir) = self
            .data
            .split_once(':')
            .map_or((self.data.as_str(), None), |(k, d)| (k, Some(d)));
        if self.val.is_some() && kind != "imagefolder" {
            return Err(Error::arg(
                "--val",
                "applies to --data imagefolder:DIR only",
            ));
        }
        match (kind, dir) {
            ("mnist", None) => Ok((
                Arc::new(Mnist::bundled(true)?),
                Arc::new(Mnist::bundled(false)?),
            )),
            ("mnist", Some(d)) => Ok((
                Arc::new(Mnist::from_dir(d, true)?),
                Arc::new(Mnist::from_dir(d, false)?),
            )),
            ("cifar10" | "cifar100", Some(d)) => {
                let k = if kind == "cifar10" {
                    CifarKind::Cifar10
                } else {
                    CifarKind::Cifar100
                };
                Ok((
                    Arc::new(Cifar::from_dir(k, d, true)?),
                    Arc::new(Cifar::from_dir(k, d, false)?),
                ))
            }
            ("imagefolder", Some(d)) => {
                let size = self.image_size;
                if !(16..=1024).contains(&size) {
                    return Err(Error::arg(
                        "--image-size",
                        format!("expected 16..=1024, got {size}"),
                    ));
                }
                let resize = size * 256 / 224;
                let all = ImageFolder::new(d, resize, size)?;
                let (train, held) = match &self.val {
                    Some(v) => {
                        let val = ImageFolder::new(v, resize, size)?;
                        if val.class_names() != all.class_names() {
                            return Err(Error::arg(
                                "--val",
                                format!(
                                    "{} has classes {:?}, the training folder {:?}",
                                    v.display(),
                                    val.class_names(),
                                    all.class_names()
                                ),
                            ));
                        }
                        (all, val)
                    }
                    None => all.split(0.1, SPLIT_SEED)?,
                };
                let train = train.with_random_resized_crop(ResizedCrop::default());
                Ok((Arc::new(train), Arc::new(held)))
            }
            _ => Err(Error::arg(
                "--data",
                format!(
                    "{:?}: expected mnist, mnist:DIR, cifar10:DIR, cifar100:DIR or imagefolder:DIR",
                    self.data
                ),
            )),
        }
    }

    /// Normalisation: MNIST's mean / std, CIFAR's or ImageNet's per channel.
    pub fn normalize(&self) -> Transform {
        match self.kind() {
            "cifar10" | "cifar100" => Transform::Normalize {
                mean: vec![0.4914, 0.4822, 0.4465],
                std: vec![0.2470, 0.2435, 0.2616],
            },
            "imagefolder" => imagenet_normalize(),
            _ => mnist_normalize(),
        }
    }

    /// Training augmentation, then normalisation: random crop (padding 2 for
    /// the 28x28 digits; padding 4 and horizontal flips for CIFAR), or, for an
    /// ImageFolder, whose random resized crop is done while decoding,
    /// horizontal flips.
    pub fn train_transforms(&self) -> Vec<Transform> {
        match self.kind() {
            "cifar10" | "cifar100" => vec![
                Transform::RandomCrop { padding: 4 },
                Transform::HorizontalFlip,
                self.normalize(),
            ],
            "imagefolder" => vec![Transform::HorizontalFlip, self.normalize()],
            _ => vec![Transform::RandomCrop { padding: 2 }, self.normalize()],
        }
    }
}

/// The normalisation `residual train` applies to MNIST.
pub fn mnist_normalize() -> Transform {
    Transform::Normalize {
        mean: vec![0.13],
        std: vec![0.33],
    }
}

/// ImageNet's mean and std (torchvision's evaluation preprocessing).
pub fn imagenet_normalize() -> Transform {
    Transform::Normalize {
        mean: vec![0.485, 0.456, 0.406],
        std: vec![0.229, 0.224, 0.225],
    }
}
