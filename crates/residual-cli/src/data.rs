//! `--data` and its companions: which dataset, its splits and preprocessing.

use residual_tensor::Error;
use residual_train::config::DataSource;
use residual_train::data::{
    show_path, validation_split, validation_split_last, Augment, Cifar, CifarKind, Dataset,
    ImageFolder, ImageRecipe, Mnist, Skipped, Transform,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The data a run trains and evaluates on, and how it is read.
pub struct Splits {
    /// The training images.
    pub train: Arc<dyn Dataset>,
    /// The images evaluated on: the held-out split, or with `--val-fraction`
    /// the validation set carved from the training split.
    pub test: Arc<dyn Dataset>,
    /// What `test` is, for messages: "test" or "validation".
    pub test_name: &'static str,
    /// How the validation set was carved, when that needs saying.
    pub test_note: Option<String>,
    /// Per-sample training transforms, normalisation last.
    pub transforms: Vec<Transform>,
    /// An image folder's input size and augmentation.
    pub recipe: Option<ImageRecipe>,
}

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
    /// With imagefolder: side of the square input [default: chosen from the images: their own
    /// size when small (median shorter side <= 64 px), with padded random crops and flips;
    /// else 224, ImageNet's recipe: random resized crops (area 8-100%) and flips, held-out
    /// images resized to size * 256 / 224 and center-cropped].
    #[arg(long)]
    pub image_size: Option<u32>,
    /// With imagefolder: train on random resized crops whose area is MIN,MAX of the image's
    /// (e.g. 0.08,1, torchvision's; 0.35,1 is gentler), whatever the image size.
    #[arg(long, value_parser = parse_crop_scale)]
    pub crop_scale: Option<CropScale>,
    /// Carve FRACTION of the training split (each class's share) out as a validation set:
    /// train on the rest, evaluate on it, never on the held-out split. For choosing a recipe
    /// without looking at the held-out images. A random sample (a fixed seed), except for the
    /// bundled digits, whose held-out split is the last 20% of each class in the source's
    /// order: there the last FRACTION of each class's training digits in that order.
    #[arg(long, allow_negative_numbers = true)]
    pub val_fraction: Option<f64>,
    /// Random affine augmentation DEGREES,TRANSLATE,SCALE (torchvision's RandomAffine:
    /// rotation up to DEGREES, shifts up to TRANSLATE of the size, scale within 1 +- SCALE),
    /// after the crops; 0,0,0 for none [default: the dataset's recipe].
    #[arg(long, value_parser = parse_random_affine, value_name = "DEGREES,TRANSLATE,SCALE")]
    pub random_affine: Option<RandomAffine>,
    /// Elastic distortion ALPHA,SIGMA (torchvision's ElasticTransform: each pixel moves by
    /// smoothed noise, SIGMA pixels of smoothing, ALPHA / 2 pixels per unit on a square image; e.g. 34,4),
    /// after the warp; 0,0 for none [default: the dataset's recipe].
    #[arg(long, allow_hyphen_values = true, value_parser = parse_elastic, value_name = "ALPHA,SIGMA")]
    pub elastic: Option<ElasticArg>,
    /// How a resumed run's validation set was carved ([`DataSource::val_last`]);
    /// `None` for a new run: the last share of each class for the bundled
    /// digits, a random one otherwise.
    #[arg(skip)]
    pub recorded_val_last: Option<bool>,
}

/// `--random-affine DEGREES,TRANSLATE,SCALE`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomAffine(pub [f32; 3]);

impl RandomAffine {
    /// The transform, or none for `0,0,0`.
    pub fn transform(self) -> Option<Transform> {
        let [degrees, translate, scale] = self.0;
        (self.0 != [0.0; 3]).then_some(Transform::RandomAffine {
            degrees,
            translate,
            scale: (1.0 - scale, 1.0 + scale),
        })
    }
}

/// Parses `DEGREES,TRANSLATE,SCALE` with `0 <= DEGREES <= 180`, `0 <= TRANSLATE < 1`
/// and `0 <= SCALE < 1`.
fn parse_random_affine(s: &str) -> Result<RandomAffine, String> {
    let bad = || {
        format!(
            "expected DEGREES,TRANSLATE,SCALE with 0 <= DEGREES <= 180, 0 <= TRANSLATE < 1 and \
             0 <= SCALE < 1 (e.g. 10,0.1,0.1), got {s:?}"
        )
    };
    let parts: Vec<f32> = s
        .split(',')
        .map(|p| p.trim().parse::<f32>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let [d, t, sc] = <[f32; 3]>::try_from(parts).map_err(|_| bad())?;
    if !((0.0..=180.0).contains(&d) && (0.0..1.0).contains(&t) && (0.0..1.0).contains(&sc)) {
        return Err(bad());
    }
    Ok(RandomAffine([d, t, sc]))
}

/// `--elastic ALPHA,SIGMA`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ElasticArg(
    /// `[alpha, sigma]`.
    pub [f32; 2],
);

impl ElasticArg {
    /// The transform, or none for an `ALPHA` of 0.
    pub fn transform(self) -> Option<Transform> {
        let [alpha, sigma] = self.0;
        (alpha != 0.0).then_some(Transform::Elastic { alpha, sigma })
    }
}

/// Parses `ALPHA,SIGMA` with `0 <= ALPHA <= 1000` and `0 <= SIGMA <= 100`
/// (`SIGMA` > 0 when `ALPHA` > 0: unsmoothed noise tears the image apart).
fn parse_elastic(s: &str) -> Result<ElasticArg, String> {
    let bad = || {
        format!(
            "expected ALPHA,SIGMA with 0 <= ALPHA <= 1000 and 0 < SIGMA <= 100 (e.g. 34,4; \
             0,0 for none), got {s:?}"
        )
    };
    let parts: Vec<f32> = s
        .split(',')
        .map(|p| p.trim().parse::<f32>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let [alpha, sigma] = <[f32; 2]>::try_from(parts).map_err(|_| bad())?;
    let none = alpha == 0.0 && (0.0..=100.0).contains(&sigma);
    if !(none || (0.0..=1000.0).contains(&alpha) && sigma > 0.0 && sigma <= 100.0) {
        return Err(bad());
    }
    Ok(ElasticArg([alpha, sigma]))
}

/// A dataset's own train and held-out splits, and an image folder's recipe.
type DatasetSplits = (Arc<dyn Dataset>, Arc<dyn Dataset>, Option<ImageRecipe>);

/// `--crop-scale MIN,MAX`: a random resized crop's area range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CropScale(pub [f64; 2]);

/// Parses `MIN,MAX` with `0 < MIN <= MAX <= 1`.
fn parse_crop_scale(s: &str) -> Result<CropScale, String> {
    let bad = || format!("expected MIN,MAX with 0 < MIN <= MAX <= 1 (e.g. 0.08,1), got {s:?}");
    let (lo, hi) = s.split_once(',').ok_or_else(bad)?;
    let lo: f64 = lo.trim().parse().map_err(|_| bad())?;
    let hi: f64 = hi.trim().parse().map_err(|_| bad())?;
    if !(0.0 < lo && lo <= hi && hi <= 1.0) {
        return Err(bad());
    }
    Ok(CropScale([lo, hi]))
}

/// Seed of the imagefolder held-out split: fixed, so `train` and `eval` agree.
const SPLIT_SEED: u64 = 0x5eed;

/// Seed of the `--val-fraction` carve: fixed, so that every recipe (and
/// every `--seed`) is compared on the same validation images.
const VAL_SPLIT_SEED: u64 = 0x7a1;

impl DataArgs {
    /// `--data` as given, or the default `mnist`.
    pub fn spec(&self) -> &str {
        self.data.as_deref().unwrap_or("mnist")
    }

    /// Whether `--val-fraction` carves the last share of each class in the
    /// source's order (see [`DataArgs::recorded_val_last`]).
    fn val_last(&self) -> bool {
        self.recorded_val_last.unwrap_or(self.spec() == "mnist")
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
            crop_scale: self.crop_scale.map(|c| c.0),
            val_fraction: self.val_fraction,
            val_last: self.val_fraction.is_some() && self.val_last(),
        })
    }

    /// The flags that name `source`.
    pub fn from_source(source: &DataSource) -> Self {
        DataArgs {
            data: Some(source.data.clone()),
            val: source.val.clone(),
            image_size: source.image_size,
            crop_scale: source.crop_scale.map(CropScale),
            val_fraction: source.val_fraction,
            // The run's warp is in its transforms (TrainConfig::transforms).
            random_affine: None,
            elastic: None,
            recorded_val_last: Some(source.val_last),
        }
    }

    /// The training and evaluation data, and how the training images are
    /// read: the dataset's own splits, with `--val-fraction` the validation
    /// set carved from its training split in place of the held-out one.
    pub fn splits(&self) -> Result<Splits, Error> {
        let (train, test, recipe) = self.dataset_splits()?;
        let mut transforms = match &recipe {
            Some(r) => r.train_transforms(),
            None => self.builtin_augmentation(),
        };
        if let Some(affine) = self.random_affine {
            transforms.retain(|t| !matches!(t, Transform::RandomAffine { .. }));
            transforms.extend(affine.transform());
        }
        if let Some(elastic) = self.elastic {
            transforms.retain(|t| !matches!(t, Transform::Elastic { .. }));
            transforms.extend(elastic.transform());
        }
        transforms.push(self.normalize());
        let Some(fraction) = self.val_fraction else {
            return Ok(Splits {
                train,
                test,
                test_name: "test",
                test_note: None,
                transforms,
                recipe,
            });
        };
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(Error::arg(
                "--val-fraction",
                format!("expected a fraction in (0, 1), e.g. 0.1, got {fraction}"),
            ));
        }
        let (train, val, note) = if self.val_last() && self.spec() == "mnist" {
            // The held-out digits are the last 20% of each class in the
            // package's order: the validation digits come from the same
            // part of it, the last of what precedes them.
            let (t, v) = validation_split_last(train, &Mnist::bundled_train_order()?, fraction)?;
            let note = format!(
                "validation: the last {:.0}% of each class's training digits in the npm \
                 package's order, as the held-out digits were cut (scripts/data/make_mnist.py)",
                fraction * 100.0
            );
            (t, v, Some(note))
        } else if self.val_last() {
            return Err(Error::arg(
                "--val-fraction",
                format!(
                    "the run's validation set is the last share of each class in the source's \
                     order, which {} does not record",
                    self.spec()
                ),
            ));
        } else {
            let (t, v) = validation_split(train, fraction, VAL_SPLIT_SEED)?;
            (t, v, None)
        };
        if val.is_empty() {
            return Err(Error::arg(
                "--val-fraction",
                format!("{fraction} of the training split is no image"),
            ));
        }
        Ok(Splits {
            train: Arc::new(train),
            test: Arc::new(val),
            test_name: "validation",
            test_note: note,
            transforms,
            recipe,
        })
    }

    /// The dataset's own train and held-out splits, and an image folder's
    /// recipe.
    fn dataset_splits(&self) -> Result<DatasetSplits, Error> {
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
        if self.crop_scale.is_some() && kind != "imagefolder" {
            return Err(Error::arg(
                "--crop-scale",
                format!(
                    "applies to --data imagefolder:DIR only; {kind} trains on padded random crops"
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
                None,
            )),
            ("mnist", Some(d)) => Ok((
                Arc::new(Mnist::from_dir(d, true)?),
                Arc::new(Mnist::from_dir(d, false)?),
                None,
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
                    None,
                ))
            }
            ("imagefolder", Some(d)) => {
                if let Some(size) = self.image_size {
                    // Refused before the folder is scanned.
                    ImageRecipe::choose(1, Some(size), None)?;
                }
                let all = ImageFolder::open(d)?;
                report_skipped(d.as_ref(), all.skipped());
                let recipe = ImageRecipe::choose(
                    all.median_short_side(),
                    self.image_size,
                    self.crop_scale.map(|c| c.0),
                )?;
                let all = all.resized(recipe.resize, recipe.size)?;
                let (train, held) = match &self.val {
                    Some(v) => {
                        let val = ImageFolder::open(v)?.resized(recipe.resize, recipe.size)?;
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
                let train = match recipe.augment {
                    Augment::ResizedCrop(rc) => train.with_random_resized_crop(rc),
                    Augment::PaddedCrop { .. } => train,
                };
                Ok((Arc::new(train), Arc::new(held), Some(recipe)))
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

    /// The training augmentation of the built-in datasets: for the 28x28
    /// digits, random crops of the 2-pixel padded digit and a random affine
    /// warp (rotation up to 15 degrees, shifts up to 10%, scale 0.85-1.15:
    /// the main job's recipe, chosen on a validation split, see
    /// docs/training.md); for CIFAR, crops of the 4-pixel padded image and
    /// horizontal flips.
    fn builtin_augmentation(&self) -> Vec<Transform> {
        match self.kind() {
            "cifar10" | "cifar100" => vec![
                Transform::RandomCrop { padding: 4 },
                Transform::HorizontalFlip,
            ],
            _ => vec![
                Transform::RandomCrop { padding: 2 },
                Transform::RandomAffine {
                    degrees: 15.0,
                    translate: 0.1,
                    scale: (0.85, 1.15),
                },
            ],
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
    let p = residual_zoo::Preprocess::TORCHVISION;
    Transform::Normalize {
        mean: p.mean.to_vec(),
        std: p.std.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether two datasets hold the same samples in the same order.
    fn same(a: &dyn Dataset, b: &dyn Dataset) -> bool {
        a.len() == b.len() && (0..a.len()).all(|i| a.get(i).unwrap() == b.get(i).unwrap())
    }

    #[test]
    fn val_fraction_on_the_bundled_digits_is_the_last_of_each_class_unless_the_run_recorded_a_random_split(
    ) {
        let args = |recorded| DataArgs {
            val_fraction: Some(0.2),
            recorded_val_last: recorded,
            ..Default::default()
        };
        let train: Arc<dyn Dataset> = Arc::new(Mnist::bundled(true).unwrap());
        let order = Mnist::bundled_train_order().unwrap();
        let (_, last) = validation_split_last(train.clone(), &order, 0.2).unwrap();
        let (_, random) = validation_split(train, 0.2, VAL_SPLIT_SEED).unwrap();
        let new = args(None).splits().unwrap();
        assert!(same(&*new.test, &last) && new.test_note.is_some());
        assert!(args(None).source().unwrap().val_last);
        // A run recorded before the field existed keeps its random split.
        let old = args(Some(false)).splits().unwrap();
        assert!(same(&*old.test, &random) && !same(&*old.test, &last));
        assert!(!args(Some(false)).source().unwrap().val_last);
    }
}
