//! The fuzz targets' entry points, one per file parser: each takes arbitrary
//! bytes, turns them into the parser's inputs, calls the parser as the front
//! end does, uses what it accepted, and returns whether it accepted the
//! input. An error is a right answer; a panic, an abort, a hang or an
//! allocation out of proportion to the input is the failure.
//!
//! `fuzz/` (cargo-fuzz, nightly) runs these under libFuzzer, one target per
//! function; `tests/fuzz_corpus.rs` replays the saved corpus (`fuzz/corpus/`)
//! and thousands of seeded mutations of it on stable Rust, in `cargo test`.
//! Parsers that read files get theirs written into `scratch`, a folder of the
//! caller's ([`scratch_dir`] for the fuzz targets), so that the code under
//! test is the code a user's file goes through.

use crate::checkpoint;
use crate::data::{self, Cifar, CifarKind, Dataset, ImageFolder, Mnist, ResizedCrop};
use crate::optim::{Optimizer, OptimizerConfig};
use residual_nn::named_tensors;
use residual_nn::weights::{load_safetensors_bytes, read_tensors};
use residual_tensor::{Device, Result};
use residual_zoo::{ModelConfig, ModelOptions, ResNet, ResNetConfig};
use std::path::{Path, PathBuf};

/// The targets, as `fuzz/fuzz_targets/<name>.rs` and `fuzz/corpus/<name>/` name them.
pub const TARGETS: [&str; 8] = [
    "idx",
    "cifar",
    "image_decode",
    "image_folder",
    "safetensors_weights",
    "checkpoint_state",
    "checkpoint_meta",
    "model_config",
];

/// Splits `data` in two: the first two bytes (big-endian) are the length of
/// the first part, which is clamped to what follows.
pub fn split(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return (&[], data);
    };
    rest.split_at((u16::from_be_bytes(*len) as usize).min(rest.len()))
}

/// A folder of this process for the fuzz targets' files:
/// `$TMPDIR/residual-fuzz-<target>-<pid>`, created when missing.
pub fn scratch_dir(target: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("residual-fuzz-{target}-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// Writes `bytes` to `scratch/name` (folders created) and returns the path.
fn put(scratch: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch.join(name);
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _ = std::fs::write(&path, bytes);
    path
}

/// Reads every sample of `d` (cut to the first and last few): what a
/// training run does with what the parser accepted.
fn read_samples(d: &dyn Dataset, seed: u64) {
    let n = d.len();
    for i in (0..n.min(3)).chain(n.saturating_sub(3)..n) {
        let _ = d.get(i);
        let _ = d.get_seeded(i, seed);
    }
}

/// IDX (MNIST): `[u16 labels length][labels file][images file]`, each
/// gzipped or not.
pub fn idx(data: &[u8]) -> bool {
    let (labels, images) = split(data);
    Mnist::from_idx(images, labels)
        .map(|m| read_samples(&m, 0))
        .is_ok()
}

/// CIFAR binary records: `[kind][records]`, kind's low bit CIFAR-100.
pub fn cifar(data: &[u8]) -> bool {
    let Some((&kind, records)) = data.split_first() else {
        return false;
    };
    let kind = if kind & 1 == 0 {
        CifarKind::Cifar10
    } else {
        CifarKind::Cifar100
    };
    Cifar::from_records(kind, &[("fuzz.bin".into(), records.to_vec())])
        .map(|c| read_samples(&c, 0))
        .is_ok()
}

/// The preprocessing parameters an image input starts with:
/// `[resize][crop][size][seed]`, then the image file.
struct ImageParams {
    resize: u32,
    crop: u32,
    size: u32,
    seed: u64,
}

fn image_params(data: &[u8]) -> (ImageParams, &[u8]) {
    let Some((p, image)) = data.split_first_chunk::<4>() else {
        let p = ImageParams {
            resize: 8,
            crop: 8,
            size: 8,
            seed: 0,
        };
        return (p, data);
    };
    let p = ImageParams {
        resize: 1 + p[0] as u32 % 64,
        crop: 1 + p[1] as u32 % 64,
        size: p[2] as u32 % 33,
        seed: p[3] as u64,
    };
    (p, image)
}

/// An image file (PNG, JPEG or anything else): `[resize][crop][size][seed]`
/// then the file. Reads its header as [`ImageFolder::new`] does, then
/// decodes it for evaluation ([`data::load_image`]) and for training
/// ([`data::load_random_resized_crop`]).
pub fn image_decode(data: &[u8], scratch: &Path) -> bool {
    let (p, image) = image_params(data);
    let name = if image.starts_with(b"\x89PNG") {
        "image.png"
    } else {
        "image.jpg"
    };
    let path = put(scratch, name, image);
    let _ = data::image_header(&path, p.resize);
    let _ = data::load_random_resized_crop(&path, &ResizedCrop::default(), p.size, p.seed);
    data::load_image(&path, p.resize, p.crop).is_ok()
}

/// An image folder: `[layout][resize][crop][size][seed][u16 length][image 1][image 2]`.
/// The layout byte picks the class names and file names (hidden, nested,
/// upper-case extensions, a non-image, a non-ASCII class name); the folder
/// is opened with [`ImageFolder::new`], split, and every sample read for
/// evaluation and for training.
pub fn image_folder(data: &[u8], scratch: &Path) -> bool {
    let Some((&layout, rest)) = data.split_first() else {
        return false;
    };
    let (p, images) = image_params(rest);
    let (first, second) = split(images);
    let root = scratch.join("folder");
    let _ = std::fs::remove_dir_all(&root);
    let names = folder_names(layout);
    put(&root, &names[0], first);
    put(&root, &names[1], second);
    let Ok(folder) = ImageFolder::new(&root, p.resize, p.crop) else {
        return false;
    };
    read_samples(&folder, p.seed);
    let train = folder.with_random_resized_crop(ResizedCrop::default());
    read_samples(&train, p.seed);
    if let Ok((a, b)) = train.split(0.5, p.seed) {
        read_samples(&a, p.seed);
        read_samples(&b, p.seed);
    }
    true
}

/// The two file names (relative to the folder) a layout byte picks.
fn folder_names(layout: u8) -> [String; 2] {
    const FIRST: [&str; 4] = ["a/x.png", "a/deep/er/x.PNG", ".hidden/x.png", "a/.x.png"];
    const SECOND: [&str; 4] = ["b/y.jpg", "a/y.JPEG", "b/notes.txt", "top.png"];
    let mut names = [
        FIRST[layout as usize % 4].to_string(),
        SECOND[(layout as usize >> 2) % 4].to_string(),
    ];
    if layout & 0x10 != 0 {
        names[1] = names[1].replacen('b', "caf\u{e9}", 1);
    }
    names
}

/// The small ResNet the weight and checkpoint targets load into (2 classes,
/// one input channel, one stage of one basic block, 2 channels wide).
pub fn tiny_model() -> Result<ResNet> {
    let config = ResNetConfig {
        layers: vec![1],
        widths: vec![2],
        stem_width: 2,
        in_channels: 1,
        num_classes: 2,
        ..ResNetConfig::cifar(20)?
    };
    ResNet::new(&config, 0, &Device::cpu())
}

thread_local! {
    /// The model and optimizer the targets load into, built once per thread.
    static LOADED: (ResNet, std::cell::RefCell<Optimizer>) = {
        let model = tiny_model().expect("the tiny model builds");
        let opt = Optimizer::new(OptimizerConfig::adamw(), named_tensors(&model), true);
        (model, std::cell::RefCell::new(opt))
    };
}

/// A safetensors weights file: loaded into [`tiny_model`] (strict when the
/// length is even, as `--weights` and `predict` load) from bytes, and read
/// as named tensors from a file ([`read_tensors`], what `predict --input`
/// reads), every tensor's values read back.
pub fn safetensors_weights(data: &[u8], scratch: &Path) -> bool {
    let strict = data.len().is_multiple_of(2);
    let loaded = LOADED.with(|(model, _)| load_safetensors_bytes(model, data, strict).is_ok());
    let path = put(scratch, "weights.safetensors", data);
    if let Ok(tensors) = read_tensors(&path, &Device::cpu()) {
        for t in tensors.values() {
            let _ = t.to_vec();
        }
    }
    loaded
}

/// A training-state file (`state.safetensors`): its metadata read alone
/// ([`checkpoint::read_meta`], what `--resume` checks first), then the whole
/// checkpoint ([`checkpoint::read`]) restored into [`tiny_model`] and an
/// AdamW optimizer, and the run's schedule evaluated.
pub fn checkpoint_state(data: &[u8], scratch: &Path) -> bool {
    let dir = scratch.join("run");
    put(&dir, "state.safetensors", data);
    if let Ok(meta) = checkpoint::read_meta(&dir) {
        use_meta(&meta);
    }
    let Ok((meta, tensors)) = checkpoint::read(&dir, &Device::cpu()) else {
        return false;
    };
    use_meta(&meta);
    LOADED.with(|(model, opt)| {
        let _ = checkpoint::restore(model, &mut opt.borrow_mut(), &meta, &tensors);
    });
    let _ = checkpoint::export_is_current(&dir, &meta);
    true
}

/// What a resumed run computes from a checkpoint's metadata first.
fn use_meta(meta: &checkpoint::CheckpointMeta) {
    let c = &meta.config;
    for step in [0, 1, meta.optimizer_step, u64::MAX] {
        let _ = c.schedule.lr(c.lr, step);
    }
    let _ = c.model_config.validate();
}

/// Checkpoint metadata: the JSON a checkpoint's header holds
/// ([`checkpoint::parse_meta`], this format and the previous one).
pub fn checkpoint_meta(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    checkpoint::parse_meta(text)
        .map(|meta| use_meta(&meta))
        .is_ok()
}

/// A model config file: `[kind][text]`, kind's low bit TOML. Written as
/// `model.json` / `model.toml` and resolved as `--model FILE` is
/// ([`residual_zoo::resolve`]); the text is also parsed as a bare ResNet
/// config ([`ResNetConfig::from_json`] / [`ResNetConfig::from_toml`]).
pub fn model_config(data: &[u8], scratch: &Path) -> bool {
    let Some((&kind, text)) = data.split_first() else {
        return false;
    };
    let toml = kind & 1 == 1;
    let path = put(
        scratch,
        if toml { "model.toml" } else { "model.json" },
        text,
    );
    if let Ok(text) = std::str::from_utf8(text) {
        let _ = if toml {
            ResNetConfig::from_toml(text)
        } else {
            ResNetConfig::from_json(text)
        };
    }
    let Some(path) = path.to_str() else {
        return false;
    };
    residual_zoo::resolve(path, &ModelOptions::default())
        .map(|c: ModelConfig| {
            let _ = c.num_classes();
        })
        .is_ok()
}

/// Runs the target `name` on `data`; `None` for an unknown name.
pub fn run(name: &str, data: &[u8], scratch: &Path) -> Option<bool> {
    Some(match name {
        "idx" => idx(data),
        "cifar" => cifar(data),
        "image_decode" => image_decode(data, scratch),
        "image_folder" => image_folder(data, scratch),
        "safetensors_weights" => safetensors_weights(data, scratch),
        "checkpoint_state" => checkpoint_state(data, scratch),
        "checkpoint_meta" => checkpoint_meta(data),
        "model_config" => model_config(data, scratch),
        _ => return None,
    })
}
