//! ImageFolder: one sub-folder per class (sorted names are the classes, as
//! torchvision's `ImageFolder`), JPEG and PNG files decoded with the `image`
//! crate, resized so the shorter side is `resize`, center-cropped to `crop`
//! (torchvision's evaluation preprocessing for 224 inputs: 256 then 224), or,
//! for training, a random resized crop of the decoded image (torchvision's
//! `RandomResizedCrop`).

use super::{Dataset, ResizedCrop};
use residual_tensor::{Error, Result};
use std::path::{Path, PathBuf};

/// File extensions read (case-insensitive).
const EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// Labelled image files, decoded when a sample is read.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    files: Vec<(PathBuf, usize)>,
    classes: Vec<String>,
    resize: u32,
    crop: u32,
    train_crop: Option<ResizedCrop>,
}

fn io(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    }
}

/// Decodes an image file to RGB; an error naming the file when it cannot be
/// read or decoded, or has no pixels.
fn decode_rgb(path: &Path) -> Result<image::RgbImage> {
    let img = image::ImageReader::open(path)
        .map_err(|e| io(path, e))?
        .with_guessed_format()
        .map_err(|e| io(path, e))?
        .decode()
        .map_err(|e| io(path, format!("cannot decode the image: {e}")))?
        .to_rgb8();
    if img.width() == 0 || img.height() == 0 {
        return Err(io(path, "the image is empty"));
    }
    Ok(img)
}

/// The `w` x `h` block at `(x0, y0)` of `img` as `[3, h, w]` f32 in [0, 1].
fn planes(img: &image::RgbImage, x0: u32, y0: u32, w: u32, h: u32) -> Vec<f32> {
    let plane = (w * h) as usize;
    let mut out = vec![0f32; 3 * plane];
    for y in 0..h {
        for x in 0..w {
            let p = img.get_pixel(x0 + x, y0 + y).0;
            let at = (y * w + x) as usize;
            for c in 0..3 {
                out[c * plane + at] = p[c] as f32 / 255.0;
            }
        }
    }
    out
}

/// Decodes an image file to `[3, crop, crop]` f32 in [0, 1]: RGB, shorter side
/// resized to `resize` (a triangle filter scaled to the reduction, i.e. with
/// antialiasing), then the center `crop` x `crop`.
pub fn load_image(path: &Path, resize: u32, crop: u32) -> Result<Vec<f32>> {
    let img = decode_rgb(path)?;
    let (w, h) = img.dimensions();
    // Shorter side to `resize`, the longer one in proportion (torchvision's Resize(int)).
    let long = |l: u32, s: u32| ((l as f64 * resize as f64 / s as f64).round() as u32).max(resize);
    let (nw, nh) = if w <= h {
        (resize, long(h, w))
    } else {
        (long(w, h), resize)
    };
    let resized = image::imageops::resize(&img, nw, nh, image::imageops::FilterType::Triangle);
    let (x0, y0) = ((nw - crop) / 2, (nh - crop) / 2);
    Ok(planes(&resized, x0, y0, crop, crop))
}

/// Decodes an image file to `[3, size, size]` f32 in [0, 1]: a box of the
/// image drawn by `crop` from `seed`, resized to `size` x `size` with the same
/// antialiased triangle filter (torchvision's `RandomResizedCrop(size)`).
pub fn load_random_resized_crop(
    path: &Path,
    crop: &ResizedCrop,
    size: u32,
    seed: u64,
) -> Result<Vec<f32>> {
    let img = decode_rgb(path)?;
    let b = crop.sample(img.width(), img.height(), seed);
    let part = image::imageops::crop_imm(&img, b.x, b.y, b.width, b.height).to_image();
    let resized = image::imageops::resize(&part, size, size, image::imageops::FilterType::Triangle);
    Ok(planes(&resized, 0, 0, size, size))
}

impl ImageFolder {
    /// Lists `dir`'s class folders and their image files (sorted, so the
    /// order and the class indices are the same on every machine).
    pub fn new(dir: impl AsRef<Path>, resize: u32, crop: u32) -> Result<Self> {
        let dir = dir.as_ref();
        if crop == 0 || resize < crop {
            return Err(Error::arg(
                "imagefolder",
                format!("need 0 < crop <= resize, got resize {resize}, crop {crop}"),
            ));
        }
        let mut classes: Vec<String> = std::fs::read_dir(dir)
            .map_err(|e| io(dir, e))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        classes.sort();
        if classes.is_empty() {
            return Err(Error::arg(
                "imagefolder",
                format!(
                    "{} has no class folders (expected DIR/CLASS/IMAGE.jpg)",
                    dir.display()
                ),
            ));
        }
        let mut files = Vec::new();
        for (label, class) in classes.iter().enumerate() {
            let cdir = dir.join(class);
            let mut imgs: Vec<PathBuf> = std::fs::read_dir(&cdir)
                .map_err(|e| io(&cdir, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension()
                        .and_then(|x| x.to_str())
                        .is_some_and(|x| EXTENSIONS.contains(&x.to_ascii_lowercase().as_str()))
                })
                .collect();
            if imgs.is_empty() {
                return Err(Error::arg(
                    "imagefolder",
                    format!(
                        "class folder {} holds no .jpg, .jpeg or .png file",
                        cdir.display()
                    ),
                ));
            }
            imgs.sort();
            files.extend(imgs.into_iter().map(|p| (p, label)));
        }
        Ok(ImageFolder {
            files,
            classes,
            resize,
            crop,
            train_crop: None,
        })
    }

    /// The same files, read for training: each sample a random resized crop
    /// of the decoded image, drawn from the sample's seed (see
    /// [`Dataset::get_seeded`]), instead of the resize and center crop. `get`
    /// without a seed still gives the evaluation preprocessing.
    pub fn with_random_resized_crop(mut self, crop: ResizedCrop) -> Self {
        self.train_crop = Some(crop);
        self
    }

    /// Class names, index = label.
    pub fn class_names(&self) -> &[String] {
        &self.classes
    }

    /// Splits off a held-out set: `fraction` of each class's files (at least
    /// one per class when it has two or more), chosen by `seed`. Returns
    /// `(train, held_out)`.
    pub fn split(&self, fraction: f64, seed: u64) -> Result<(ImageFolder, ImageFolder)> {
        if !(0.0..1.0).contains(&fraction) {
            return Err(Error::arg(
                "imagefolder",
                format!("held-out fraction must be in [0, 1), got {fraction}"),
            ));
        }
        let (mut train, mut held) = (self.clone(), self.clone());
        train.files.clear();
        held.files.clear();
        for label in 0..self.classes.len() {
            let mut of_class: Vec<&(PathBuf, usize)> =
                self.files.iter().filter(|f| f.1 == label).collect();
            let n = of_class.len();
            for i in (1..n).rev() {
                let j = (residual_tensor::rng::hash64(seed ^ label as u64, i as u64)
                    % (i as u64 + 1)) as usize;
                of_class.swap(i, j);
            }
            let k = if n >= 2 {
                ((n as f64 * fraction).round() as usize).clamp(1, n - 1)
            } else {
                0
            };
            held.files
                .extend(of_class[..k].iter().map(|f| (*f).clone()));
            train
                .files
                .extend(of_class[k..].iter().map(|f| (*f).clone()));
        }
        Ok((train, held))
    }
}

impl Dataset for ImageFolder {
    fn len(&self) -> usize {
        self.files.len()
    }
    fn shape(&self) -> [usize; 3] {
        [3, self.crop as usize, self.crop as usize]
    }
    fn classes(&self) -> usize {
        self.classes.len()
    }
    fn get(&self, i: usize) -> Result<(Vec<f32>, usize)> {
        let (path, label) = &self.files[i];
        Ok((load_image(path, self.resize, self.crop)?, *label))
    }
    fn get_seeded(&self, i: usize, seed: u64) -> Result<(Vec<f32>, usize)> {
        match &self.train_crop {
            Some(rc) => {
                let (path, label) = &self.files[i];
                Ok((load_random_resized_crop(path, rc, self.crop, seed)?, *label))
            }
            None => self.get(i),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_files_preprocessing_and_split() {
        let scratch = tempfile::tempdir().unwrap();
        let d = scratch.path();
        for (class, colour) in [("cat", [200u8, 10, 10]), ("dog", [10u8, 10, 200])] {
            std::fs::create_dir_all(d.join(class)).unwrap();
            for k in 0..4 {
                // 40 x 20 images: the shorter side (20) is resized to 8, then an 8x8 center crop.
                let img = image::RgbImage::from_fn(40, 20, |x, _| {
                    if (16..24).contains(&x) {
                        image::Rgb(colour)
                    } else {
                        image::Rgb([0, 0, 0])
                    }
                });
                img.save(d.join(class).join(format!("{k}.png"))).unwrap();
            }
        }
        std::fs::write(d.join("cat").join("notes.txt"), "not an image").unwrap();
        let f = ImageFolder::new(d, 8, 8).unwrap();
        assert_eq!(f.class_names(), ["cat", "dog"]);
        assert_eq!((f.len(), f.classes(), f.shape()), (8, 2, [3, 8, 8]));
        let (px, label) = f.get(5).unwrap();
        assert_eq!(label, 1);
        // The center crop is the blue stripe: the blue plane is bright in the middle.
        let blue_center = px[2 * 64 + 4 * 8 + 4];
        let red_center = px[4 * 8 + 4];
        assert!(
            blue_center > 0.7 && red_center < 0.1,
            "{blue_center} {red_center}"
        );
        let (train, held) = f.split(0.25, 1).unwrap();
        assert_eq!((train.len(), held.len()), (6, 2));
    }

    #[test]
    fn training_samples_are_random_resized_crops() {
        let scratch = tempfile::tempdir().unwrap();
        let d = scratch.path();
        std::fs::create_dir_all(d.join("only")).unwrap();
        let img = image::RgbImage::from_fn(40, 20, |x, y| {
            image::Rgb([(6 * x) as u8, (12 * y) as u8, 99])
        });
        let file = d.join("only").join("a.png");
        img.save(&file).unwrap();
        let plain = ImageFolder::new(d, 8, 8).unwrap();
        let f = plain
            .clone()
            .with_random_resized_crop(ResizedCrop::default());
        // Without a seed, and in a folder without the crop: evaluation preprocessing.
        assert_eq!(f.get(0).unwrap(), plain.get(0).unwrap());
        assert_eq!(plain.get_seeded(0, 5).unwrap(), plain.get(0).unwrap());
        let a = f.get_seeded(0, 1).unwrap();
        assert_eq!(a.0.len(), 3 * 8 * 8);
        assert_eq!(
            a,
            f.get_seeded(0, 1).unwrap(),
            "a pure function of the seed"
        );
        let distinct: std::collections::BTreeSet<Vec<u32>> = (0..20)
            .map(|s| {
                f.get_seeded(0, s)
                    .unwrap()
                    .0
                    .iter()
                    .map(|v| v.to_bits())
                    .collect()
            })
            .collect();
        assert!(
            distinct.len() > 10,
            "crops vary with the seed: {}",
            distinct.len()
        );
        // A box drawn from the whole image (area 100%, the image's own aspect)
        // is the whole image resized to 8x8 with the evaluation's filter.
        let whole = ResizedCrop::new([1.0, 1.0], [2.0, 2.0]).unwrap();
        let g = plain.with_random_resized_crop(whole);
        let want = image::imageops::resize(&img, 8, 8, image::imageops::FilterType::Triangle);
        assert_eq!(g.get_seeded(0, 9).unwrap().0, planes(&want, 0, 0, 8, 8));
        // The red plane rises left to right, the green top to bottom.
        let px = g.get_seeded(0, 9).unwrap().0;
        assert!(px[7] > px[0] && px[64 + 56] > px[64], "{px:?}");
    }

    #[test]
    fn bad_folders_and_files_are_clear_errors() {
        let scratch = tempfile::tempdir().unwrap();
        let d = scratch.path();
        std::fs::create_dir_all(d.join("empty")).unwrap();
        let err = ImageFolder::new(d, 8, 8).unwrap_err().to_string();
        assert!(err.contains("empty") && err.contains("no .jpg"), "{err}");
        std::fs::write(d.join("empty").join("broken.png"), b"not a png").unwrap();
        let f = ImageFolder::new(d, 8, 8).unwrap();
        let err = f.get(0).unwrap_err().to_string();
        assert!(
            err.contains("broken.png") && err.contains("decode"),
            "{err}"
        );
        assert!(ImageFolder::new(d, 8, 16)
            .unwrap_err()
            .to_string()
            .contains("crop"));
        let err = ImageFolder::new("/no/such/folder", 8, 8)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/no/such/folder"), "{err}");
    }
}
