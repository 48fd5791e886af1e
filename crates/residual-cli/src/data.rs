//! `--data` and its companions: which dataset, its splits and preprocessing.

use residual_tensor::Error;
use residual_train::config::DataSource;
use residual_train::data::{
    show_path, Cifar, CifarKind, Dataset, ImageFolder, Mnist, ResizedCrop, Skipped, Transform,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Train and test splits.
pub type Splits = (Arc<dyn Dataset>, Arc<dyn Dataset>);

/// The data flags shared by `train` and `eval`.
#[derive(clap::Args, Clone, Default)]
pub struct DataArgs {
    /// Data: `mnist` (the digits shipped in the repository, the default), `mnist:DIR` (IDX files, gzipped
    /// or not), `cifar10:DIR` / `cifar100:DIR` (the unpacked binary releases) or
    /// `imagefolder:DIR` (DIR/CLASS/**/*.jpg|png; 10% of each class held out unless --val is given).
    #[arg(long)]
    pub data: Option<String>,
    /// With imagefolder: a separate held-out folder (same class folders).
    #[arg(long)]
    pub val: Option<PathBuf>,
    /// With imagefolder: side of the square input (default 224). Held-out images are resized to
    /// size * 256 / 224 on the shorter side and center-cropped (224 -> 256 then 224);
    /// training images are random resized crops (torchvision's RandomResizedCrop:
    /// area 8-100%, aspect 3/4-4/3) resized to size, flipped at random.
    #[arg(long)]
    pub image_size: Option<u32>,
}

/// Seed of the imagefolder held-out split: fixed, so `train` and `eval` agree.
const SPLIT_SEED: u64 = 0x5eed;

/// `--image-size` when not given.
const DEFAULT_IMAGE_SIZE: u32 = 224;

impl DataArgs {
    /// `--data` as given, or the default `mnist`.
    pub fn spec(&self) -> &str {
        self.data.as_deref().unwrap_or("mnist")
    }

    fn kind(&self) -> &str {
        self.spec().split(':').next().unwrap_or("")
    }

    /// The data source to record in a run: folders made absolute, so that a
    /// resume from another working folder reads the same files.
    pub fn source(&self) -> Result<DataSource, Error> {
        let absolute = |p: &Path| {
            std::fs::canonicalize(p).map_err(|e| Error::Io {
                path: show_path(p),
                msg: e.to_string(),
            })
        };
        let data = match self.spec().split_once(':') {
            Some((kind, dir)) if !dir.is_empty() => {
                format!("{kind}:{}", absolute(Path::new(dir))?.display())
            }
            _ => self.spec().to_string(),
        };
        Ok(DataSource {
            data,
            val: self.val.as_deref().map(absolute).transpose()?,
            image_size: self.image_size,
        })
    }

    /// The flags that name `source`.
    pub fn from_source(source: &DataSource) -> Self {
        DataArgs {
            data: Some(source.data.clone()),
            val: source.val.clone(),
            image_size: source.image_size,
        }
    }

    /// The train and test splits.
    pub fn splits(&self) -> Result<Splits, Error> {
        let spec = self.spec();
        let (kind, dir) = spec
            .split_once(':')
            .map_or((spec, None), |(k, d)| (k, Some(d)));
        if self.val.is_some() && kind != "imagefolder" {
            return Err(Error::arg(
                "--val",
                "applies to --data imagefolder:DIR only",
            ));
        }
        if let Some(size) = self.image_size.filter(|_| kind != "imagefolder") {
            return Err(Error::arg(
                "--image-size",
                format!(
                    "applies to --data imagefolder:DIR only; {kind} images have their own size \
                     (MNIST 28x28, CIFAR 32x32), got --image-size {size}"
                ),
            ));
        }
        if dir == Some("") {
            return Err(Error::arg(
                "--data",
                format!("{spec:?} names no folder: expected {kind}:DIR"),
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
                let size = self.image_size.unwrap_or(DEFAULT_IMAGE_SIZE);
                if !(16..=1024).contains(&size) {
                    return Err(Error::arg(
                        "--image-size",
                        format!("expected 16..=1024, got {size}"),
                    ));
                }
                let resize = size * 256 / 224;
                let all = ImageFolder::new(d, resize, size)?;
                report_skipped(d.as_ref(), all.skipped());
                let (train, held) = match &self.val {
                    Some(v) => {
                        let val = ImageFolder::new(v, resize, size)?;
                        report_skipped(v, val.skipped());
                        if val.class_names() != all.class_names() {
                            return Err(Error::arg(
                                "--val",
                                format!(
                                    "{} has classes {:?}, the training folder {:?}",
                                    show_path(v),
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
                    "{spec:?}: expected mnist, mnist:DIR, cifar10:DIR, cifar100:DIR or imagefolder:DIR"
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

/// Says on stderr what an image folder left out (hidden entries, files that
/// are not images): a count per reason and the first few paths.
fn report_skipped(dir: &Path, skipped: &[Skipped]) {
    if skipped.is_empty() {
        return;
    }
    let mut reasons: Vec<String> = Vec::new();
    for reason in [
        residual_train::data::SkipReason::Hidden,
        residual_train::data::SkipReason::NotInAClass,
        residual_train::data::SkipReason::NotAnImage,
    ] {
        let of: Vec<&Skipped> = skipped.iter().filter(|s| s.reason == reason).collect();
        if of.is_empty() {
            continue;
        }
        let names: Vec<String> = of
            .iter()
            .take(3)
            .map(|s| show_path(s.path.strip_prefix(dir).unwrap_or(&s.path)))
            .collect();
        let more = if of.len() > 3 { ", ..." } else { "" };
        reasons.push(format!(
            "{} {reason} ({}{more})",
            of.len(),
            names.join(", ")
        ));
    }
    eprintln!("{}: skipped {}", show_path(dir), reasons.join("; "));
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
