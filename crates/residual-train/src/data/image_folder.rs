//! ImageFolder: one sub-folder per class (sorted names are the classes, as
//! torchvision's `ImageFolder`), the JPEG and PNG files anywhere under it
//! (nested folders included, as torchvision walks them) decoded with the `image`
//! crate, resized so the shorter side is `resize`, center-cropped to `crop`
//! (torchvision's evaluation preprocessing for 224 inputs: 256 then 224), or,
//! for training, a random resized crop of the decoded image (torchvision's
//! `RandomResizedCrop`).
//!
//! Unlike torchvision, hidden entries (names starting with `.`: a
//! `.ipynb_checkpoints` folder, macOS's `._IMG.jpg` resource files) are not
//! classes and not images; they and the files that are not images are
//! skipped and listed in [`ImageFolder::skipped`], so a front end can say
//! what it left out. Every image's header is read when the folder is opened:
//! an unreadable or empty image is an error naming the file before training
//! starts, not an epoch later.

use super::{Dataset, ResizedCrop};
use rayon::prelude::*;
use residual_tensor::{Error, Result};
use residual_zoo::Interpolation;
use std::path::{Path, PathBuf};

/// File extensions read (case-insensitive).
const EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// The decoder may allocate this much for any image, however small its file.
const DECODE_BASE_BYTES: u64 = 4 << 20;
/// ... plus this many bytes per byte of the file: more than PNG's deflate
/// (at most 1032:1) or a JPEG (about 1 bit per 8x8 block at the least) can
/// expand, so a real image always decodes, while a header claiming a huge
/// image in a small file is an error before its buffer is allocated.
const DECODE_BYTES_PER_FILE_BYTE: u64 = 4096;
/// The decoder never allocates more than this (the `image` crate's default).
const DECODE_MAX_BYTES: u64 = 512 << 20;
/// The most pixels a resize for evaluation may make (the shorter side to
/// `resize`, the longer in proportion): a 1 x 100000 strip would otherwise
/// become a 256 x 25600000 image.
const MAX_RESIZED_PIXELS: u64 = 1 << 24;

/// Labelled image files, decoded when a sample is read.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    files: Vec<(PathBuf, usize)>,
    /// Each file's `(width, height)` from its header, in `files`' order.
    sizes: Vec<(u32, u32)>,
    classes: Vec<String>,
    resize: u32,
    crop: u32,
    train_crop: Option<ResizedCrop>,
    skipped: Vec<Skipped>,
}

/// An entry of the folder that [`ImageFolder::new`] left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The file or folder.
    pub path: PathBuf,
    /// Why it was left out.
    pub reason: SkipReason,
}

/// Why an entry was left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// A name starting with `.` (a hidden file or folder).
    Hidden,
    /// A file at the top level, where only class folders count.
    NotInAClass,
    /// A file whose extension is not .jpg, .jpeg or .png.
    NotAnImage,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SkipReason::Hidden => "hidden",
            SkipReason::NotInAClass => "not in a class folder",
            SkipReason::NotAnImage => "not a .jpg, .jpeg or .png file",
        })
    }
}

/// A path as a message shows it: as it is when it is UTF-8, with its
/// non-UTF-8 bytes escaped (`\xE9`) otherwise, never silently mangled.
pub fn show_path(path: &Path) -> String {
    match path.to_str() {
        Some(s) => s.to_string(),
        None => path.as_os_str().escape_ascii_lossless(),
    }
}

/// Escaping of the bytes of an OS string that are not UTF-8.
trait EscapeLossless {
    /// The string with every byte of an invalid UTF-8 sequence as `\xNN`.
    fn escape_ascii_lossless(&self) -> String;
}

impl EscapeLossless for std::ffi::OsStr {
    fn escape_ascii_lossless(&self) -> String {
        let bytes = self.as_encoded_bytes();
        let mut out = String::new();
        for chunk in bytes.utf8_chunks() {
            out.push_str(chunk.valid());
            for b in chunk.invalid() {
                out.push_str(&format!("\\x{b:02X}"));
            }
        }
        out
    }
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.as_encoded_bytes().first() == Some(&b'.')
}

fn has_image_extension(p: &Path) -> bool {
    p.extension()
        .and_then(|x| x.to_str())
        .is_some_and(|x| EXTENSIONS.contains(&x.to_ascii_lowercase().as_str()))
}

/// The image files under `dir`, at any depth, sorted by path (torchvision
/// walks `os.walk(followlinks=True)` sorted); what was left out goes to
/// `skipped`. Symbolic links are followed; a folder reached twice through
/// links is read once.
fn walk_images(
    dir: &Path,
    skipped: &mut Vec<Skipped>,
    seen: &mut std::collections::HashSet<PathBuf>,
) -> Result<Vec<PathBuf>> {
    let real = std::fs::canonicalize(dir).map_err(|e| io(dir, e))?;
    if !seen.insert(real) {
        return Ok(Vec::new());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let mut images = Vec::new();
    for p in entries {
        if p.file_name().is_some_and(is_hidden) {
            skipped.push(Skipped {
                path: p,
                reason: SkipReason::Hidden,
            });
        } else if p.is_dir() {
            images.extend(walk_images(&p, skipped, seen)?);
        } else if has_image_extension(&p) {
            images.push(p);
        } else {
            skipped.push(Skipped {
                path: p,
                reason: SkipReason::NotAnImage,
            });
        }
    }
    Ok(images)
}

/// Reads the header of every image (in parallel): each file's `(width,
/// height)`, or an error naming the first file (in path order) that cannot
/// be opened, is not an image or is empty.
fn read_headers(files: &[(PathBuf, usize)]) -> Result<Vec<(u32, u32)>> {
    let each: Vec<Result<(u32, u32)>> = files.par_iter().map(|(p, _)| header_size(p)).collect();
    each.into_iter().collect()
}

/// The width and height in an image file's header, read without decoding
/// its pixels: an error naming the file when it cannot be opened, is not an
/// image, has no pixels, or is so narrow that resizing its shorter side to
/// `resize` would make more than 2^24 pixels. What [`ImageFolder::new`]
/// checks of every file.
pub fn image_header(path: &Path, resize: u32) -> Result<(u32, u32)> {
    let (w, h) = header_size(path)?;
    resized_size(w, h, resize).map_err(|e| io(path, e))?;
    Ok((w, h))
}

/// The width and height in an image file's header; an error naming the
/// file when it cannot be opened, is not an image or has no pixels.
fn header_size(path: &Path) -> Result<(u32, u32)> {
    let (w, h) = reader(path)?
        .into_dimensions()
        .map_err(|e| io(path, format!("not a readable image: {e}")))?;
    if w == 0 || h == 0 {
        return Err(io(path, format!("the image is empty ({w}x{h} pixels)")));
    }
    Ok((w, h))
}

/// The median of the shorter sides of `sizes` (the upper median for an even
/// count; 1 for none).
fn median_short_side(sizes: &[(u32, u32)]) -> u32 {
    let mut short: Vec<u32> = sizes.iter().map(|&(w, h)| w.min(h)).collect();
    short.sort_unstable();
    short.get(short.len() / 2).copied().unwrap_or(1)
}

/// A reader of the image file at `path`, its format guessed from its first
/// bytes (or its extension), allowed to allocate in proportion to the file's
/// size (see [`DECODE_BYTES_PER_FILE_BYTE`]).
fn reader(path: &Path) -> Result<image::ImageReader<std::io::BufReader<std::fs::File>>> {
    let mut r = image::ImageReader::open(path)
        .map_err(|e| io(path, e))?
        .with_guessed_format()
        .map_err(|e| io(path, e))?;
    let len = std::fs::metadata(path).map_err(|e| io(path, e))?.len();
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(
        len.saturating_mul(DECODE_BYTES_PER_FILE_BYTE)
            .saturating_add(DECODE_BASE_BYTES)
            .min(DECODE_MAX_BYTES),
    );
    r.limits(limits);
    Ok(r)
}

/// The size a `w` x `h` image is resized to for evaluation: the shorter side
/// `resize`, the longer in proportion (torchvision's `Resize(int)`); an error
/// when that is more than [`MAX_RESIZED_PIXELS`].
fn resized_size(w: u32, h: u32, resize: u32) -> std::result::Result<(u32, u32), String> {
    let long = |l: u32, s: u32| ((l as f64 * resize as f64 / s as f64).round() as u32).max(resize);
    let (nw, nh) = if w <= h {
        (resize, long(h, w))
    } else {
        (long(w, h), resize)
    };
    if nw as u64 * nh as u64 > MAX_RESIZED_PIXELS {
        return Err(format!(
            "an image of {w}x{h} pixels is too narrow to resize its shorter side to {resize}: \
             that would make {nw}x{nh} pixels, more than {MAX_RESIZED_PIXELS}"
        ));
    }
    Ok((nw, nh))
}

fn io(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: show_path(path),
        msg: e.to_string(),
    }
}

/// Decodes an image file to RGB; an error naming the file when it cannot be
/// read or decoded, or has no pixels.
fn decode_rgb(path: &Path) -> Result<image::RgbImage> {
    let img = reader(path)?
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
    let plane = w as usize * h as usize;
    let mut out = vec![0f32; 3 * plane];
    for y in 0..h {
        for x in 0..w {
            let p = img.get_pixel(x0 + x, y0 + y).0;
            let at = y as usize * w as usize + x as usize;
            for c in 0..3 {
                out[c * plane + at] = p[c] as f32 / 255.0;
            }
        }
    }
    out
}

/// Decodes an image file to `[3, crop, crop]` f32 in [0, 1]: RGB, shorter side
/// resized to `resize` (a triangle filter scaled to the reduction, i.e. with
/// antialiasing), then the center `crop` x `crop`. An error when `crop` is 0
/// or more than `resize`, and for an image too narrow to resize (see
/// [`image_header`]).
pub fn load_image(path: &Path, resize: u32, crop: u32) -> Result<Vec<f32>> {
    load_image_with(path, resize, crop, Interpolation::Bilinear)
}

/// [`load_image`] with the resize filter of `interpolation`: bilinear (a
/// triangle filter) or bicubic (Catmull-Rom, Keys' cubic with `a = -0.5`, as
/// Pillow's bicubic), both scaled to the reduction (antialiased).
pub fn load_image_with(
    path: &Path,
    resize: u32,
    crop: u32,
    interpolation: Interpolation,
) -> Result<Vec<f32>> {
    check_crop(resize, crop)?;
    let img = decode_rgb(path)?;
    let (w, h) = img.dimensions();
    let (nw, nh) = resized_size(w, h, resize).map_err(|e| io(path, e))?;
    let filter = match interpolation {
        Interpolation::Bilinear => image::imageops::FilterType::Triangle,
        Interpolation::Bicubic => image::imageops::FilterType::CatmullRom,
    };
    let resized = image::imageops::resize(&img, nw, nh, filter);
    let (x0, y0) = ((nw - crop) / 2, (nh - crop) / 2);
    Ok(planes(&resized, x0, y0, crop, crop))
}

/// An error unless `0 < crop <= resize`.
fn check_crop(resize: u32, crop: u32) -> Result<()> {
    if crop == 0 || resize < crop {
        return Err(Error::arg(
            "imagefolder",
            format!("need 0 < crop <= resize, got resize {resize}, crop {crop}"),
        ));
    }
    Ok(())
}

/// Decodes an image file to `[3, size, size]` f32 in [0, 1]: a box of the
/// image drawn by `crop` from `seed`, resized to `size` x `size` with the same
/// antialiased triangle filter (torchvision's `RandomResizedCrop(size)`). An
/// error when `size` is 0.
pub fn load_random_resized_crop(
    path: &Path,
    crop: &ResizedCrop,
    size: u32,
    seed: u64,
) -> Result<Vec<f32>> {
    check_crop(size, size)?;
    let img = decode_rgb(path)?;
    let b = crop.sample(img.width(), img.height(), seed);
    let part = image::imageops::crop_imm(&img, b.x, b.y, b.width, b.height).to_image();
    let resized = image::imageops::resize(&part, size, size, image::imageops::FilterType::Triangle);
    Ok(planes(&resized, 0, 0, size, size))
}

impl ImageFolder {
    /// Lists `dir`'s class folders and the image files under each, at any
    /// depth (sorted, so the order and the class indices are the same on
    /// every machine), and reads every image's header; then, as
    /// [`ImageFolder::resized`], sets the evaluation preprocessing.
    pub fn new(dir: impl AsRef<Path>, resize: u32, crop: u32) -> Result<Self> {
        check_crop(resize, crop)?;
        Self::open(dir)?.resized(resize, crop)
    }

    /// Lists `dir`'s class folders and image files and reads every image's
    /// header (as [`ImageFolder::new`]), before choosing an input size: the
    /// image sizes ([`ImageFolder::median_short_side`]) may decide it. Reads
    /// samples at their own shorter side, center-cropped square, until
    /// [`ImageFolder::resized`] says otherwise.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let mut skipped = Vec::new();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| io(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        let mut class_dirs = Vec::new();
        for p in entries {
            let reason = if p.file_name().is_some_and(is_hidden) {
                SkipReason::Hidden
            } else if p.is_dir() {
                class_dirs.push(p);
                continue;
            } else {
                SkipReason::NotInAClass
            };
            skipped.push(Skipped { path: p, reason });
        }
        if class_dirs.is_empty() {
            return Err(Error::arg(
                "imagefolder",
                format!(
                    "{} has no class folders (expected DIR/CLASS/IMAGE.jpg)",
                    show_path(dir)
                ),
            ));
        }
        let mut classes = Vec::new();
        let mut files = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (label, cdir) in class_dirs.iter().enumerate() {
            let imgs = walk_images(cdir, &mut skipped, &mut seen)?;
            if imgs.is_empty() {
                return Err(Error::arg(
                    "imagefolder",
                    format!(
                        "class folder {} holds no .jpg, .jpeg or .png file (at any depth)",
                        show_path(cdir)
                    ),
                ));
            }
            let name = cdir.file_name().unwrap_or_default();
            classes.push(name.escape_ascii_lossless());
            files.extend(imgs.into_iter().map(|p| (p, label)));
        }
        let sizes = read_headers(&files)?;
        let short = median_short_side(&sizes);
        Ok(ImageFolder {
            files,
            sizes,
            classes,
            resize: short,
            crop: short,
            train_crop: None,
            skipped,
        })
    }

    /// The same files read with the shorter side resized to `resize` and the
    /// center `crop` x `crop` kept (torchvision's `Resize(resize)` then
    /// `CenterCrop(crop)`); an error when `crop` is 0 or more than `resize`,
    /// or naming the first image too narrow to resize (its longer side would
    /// make more than 2^24 pixels).
    pub fn resized(mut self, resize: u32, crop: u32) -> Result<Self> {
        check_crop(resize, crop)?;
        for ((path, _), &(w, h)) in self.files.iter().zip(&self.sizes) {
            resized_size(w, h, resize).map_err(|e| io(path, e))?;
        }
        self.resize = resize;
        self.crop = crop;
        Ok(self)
    }

    /// The median over the images of the shorter side of each, in pixels:
    /// what "the images' own size" is for a folder of mixed sizes.
    pub fn median_short_side(&self) -> u32 {
        median_short_side(&self.sizes)
    }

    /// What was left out when the folder was read (hidden entries, files
    /// that are not images), in path order.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
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
        let labels: Vec<usize> = self.files.iter().map(|f| f.1).collect();
        let (kept, held) = super::stratified_indices(&labels, fraction, seed)?;
        let only = |indices: Vec<usize>| {
            let mut part = self.clone();
            part.files = indices.iter().map(|&i| self.files[i].clone()).collect();
            part.sizes = indices.iter().map(|&i| self.sizes[i]).collect();
            part
        };
        Ok((only(kept), only(held)))
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
    fn label(&self, i: usize) -> Result<usize> {
        Ok(self.files[i].1)
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
        // A file that is no image is found when the folder is opened, not
        // when the sample is first read.
        std::fs::write(d.join("empty").join("broken.png"), b"not a png").unwrap();
        let err = ImageFolder::new(d, 8, 8).unwrap_err().to_string();
        assert!(
            err.contains("broken.png") && err.contains("not a readable image"),
            "{err}"
        );
        // A PNG whose header is whole but whose pixels are cut off opens,
        // and decoding it names the file.
        let mut png = Vec::new();
        image::RgbImage::from_fn(64, 64, |x, y| {
            image::Rgb([(x * 7 + y * 13) as u8, (x * y) as u8, 9])
        })
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
        std::fs::write(d.join("empty").join("broken.png"), &png[..png.len() / 2]).unwrap();
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

    #[test]
    fn nested_images_count_hidden_entries_and_other_files_are_skipped_and_listed() {
        let scratch = tempfile::tempdir().unwrap();
        let d = scratch.path();
        let png = |p: &Path| {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            image::RgbImage::from_pixel(4, 4, image::Rgb([1, 2, 3]))
                .save(p)
                .unwrap();
        };
        png(&d.join("a/top.png"));
        png(&d.join("a/deeper/still/nested.PNG"));
        png(&d.join("b/one.jpg"));
        png(&d.join(".ipynb_checkpoints/ghost.png"));
        png(&d.join("a/.hidden_dir/x.png"));
        std::fs::write(d.join("a/._top.png"), b"AppleDouble").unwrap();
        std::fs::write(d.join("b/readme.txt"), b"text").unwrap();
        std::fs::write(d.join("labels.csv"), b"text").unwrap();
        let f = ImageFolder::new(d, 4, 4).unwrap();
        assert_eq!(f.class_names(), ["a", "b"], "hidden folders are no classes");
        let files: Vec<_> = f
            .files
            .iter()
            .map(|(p, l)| (p.strip_prefix(d).unwrap().to_path_buf(), *l))
            .collect();
        assert_eq!(
            files,
            [
                ("a/deeper/still/nested.PNG".into(), 0),
                ("a/top.png".into(), 0),
                ("b/one.jpg".into(), 1)
            ]
        );
        let skipped: Vec<_> = f
            .skipped()
            .iter()
            .map(|s| (s.path.strip_prefix(d).unwrap().to_path_buf(), s.reason))
            .collect();
        assert_eq!(
            skipped,
            [
                (".ipynb_checkpoints".into(), SkipReason::Hidden),
                ("labels.csv".into(), SkipReason::NotInAClass),
                ("a/._top.png".into(), SkipReason::Hidden),
                ("a/.hidden_dir".into(), SkipReason::Hidden),
                ("b/readme.txt".into(), SkipReason::NotAnImage),
            ]
        );
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_class_names_are_escaped_not_mangled() {
        use std::os::unix::ffi::OsStrExt;
        let scratch = tempfile::tempdir().unwrap();
        let d = scratch.path();
        let class = d.join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
        std::fs::create_dir_all(&class).unwrap();
        let err = ImageFolder::new(d, 4, 4).unwrap_err().to_string();
        assert!(err.contains("caf\\xE9"), "{err}");
        image::RgbImage::from_pixel(4, 4, image::Rgb([1, 2, 3]))
            .save(class.join("x.png"))
            .unwrap();
        let f = ImageFolder::new(d, 4, 4).unwrap();
        assert_eq!(f.class_names(), ["caf\\xE9"]);
    }

    #[test]
    fn strips_too_narrow_to_resize_and_bad_crops_are_errors() {
        let scratch = tempfile::tempdir().unwrap();
        let d = scratch.path();
        std::fs::create_dir_all(d.join("a")).unwrap();
        let strip = d.join("a").join("strip.png");
        // A few hundred bytes of PNG that resizing its shorter side to 64
        // would make 64 x 2560000 pixels (was: about 500 MB per read).
        image::RgbImage::from_pixel(1, 40000, image::Rgb([1, 2, 3]))
            .save(&strip)
            .unwrap();
        let err = ImageFolder::new(d, 64, 64).unwrap_err().to_string();
        assert!(
            err.contains("strip.png") && err.contains("too narrow"),
            "{err}"
        );
        let err = load_image(&strip, 64, 64).unwrap_err().to_string();
        assert!(err.contains("too narrow"), "{err}");
        // Training crops take part of it, and work.
        let crop = load_random_resized_crop(&strip, &ResizedCrop::default(), 8, 0).unwrap();
        assert_eq!(crop.len(), 3 * 8 * 8);
        // A crop larger than the resize was a subtraction overflow (a panic).
        let err = load_image(&strip, 4, 8).unwrap_err().to_string();
        assert!(err.contains("crop"), "{err}");
        let err = load_random_resized_crop(&strip, &ResizedCrop::default(), 0, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("crop"), "{err}");
    }
}
