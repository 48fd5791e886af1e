//! The seed corpus of each fuzz target, made by the project's own writers
//! (valid inputs, named `valid-*`, which every parser must accept) and by
//! hand (edge cases, named `edge-*`: headers claiming more than the file
//! holds, invalid JSON, offsets out of range, dtype and shape mismatches,
//! empty images, overflowing counts, truncated files). The ignored test
//! `write_seed_corpus` writes them to `fuzz/corpus/<target>/`.

use flate2::write::GzEncoder;
use residual_nn::weights::save_safetensors;
use residual_train::checkpoint::{self, CheckpointMeta};
use residual_train::config::{DataSource, TrainConfig};
use residual_train::data::{Dataset, Mnist};
use residual_train::fuzz::tiny_model;
use residual_train::optim::{Optimizer, OptimizerConfig};
use residual_train::schedule::Schedule;
use residual_zoo::{ModelConfig, ModelOptions};
use std::io::Write;

/// A named seed input.
pub type Seed = (String, Vec<u8>);

/// The seeds of `target`.
pub fn seeds(target: &str) -> Vec<Seed> {
    let list: Vec<(&str, Vec<u8>)> = match target {
        "idx" => idx(),
        "cifar" => cifar(),
        "image_decode" => image_decode(),
        "image_folder" => image_folder(),
        "safetensors_weights" => safetensors_weights(),
        "checkpoint_state" => checkpoint_state(),
        "checkpoint_meta" => checkpoint_meta(),
        "model_config" => model_config(),
        other => panic!("no seeds for {other}"),
    };
    list.into_iter().map(|(n, b)| (n.to_string(), b)).collect()
}

/// `[u16 length of first][first][second]`, as `fuzz::split` reads it.
fn pair(first: &[u8], second: &[u8]) -> Vec<u8> {
    let mut v = (first.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(first);
    v.extend_from_slice(second);
    v
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn idx_file(magic: u32, sizes: &[u32], values: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for s in sizes {
        v.extend(s.to_be_bytes());
    }
    v.extend_from_slice(values);
    v
}

fn idx() -> Vec<(&'static str, Vec<u8>)> {
    let digits = Mnist::bundled(false).unwrap();
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for i in 0..2 {
        let (px, label) = digits.get(i).unwrap();
        pixels.extend(px.iter().map(|&p| (p * 255.0).round() as u8));
        labels.push(label as u8);
    }
    let images = idx_file(0x0803, &[2, 28, 28], &pixels);
    let labels = idx_file(0x0801, &[2], &labels);
    let tiny = |n: u32, r: u32, c: u32, px: usize, labels: &[u8]| {
        pair(
            &idx_file(0x0801, &[labels.len() as u32], labels),
            &idx_file(0x0803, &[n, r, c], &vec![9; px]),
        )
    };
    let mut bad_crc = gzip(&idx_file(0x0803, &[1, 2, 3], &[1; 6]));
    let at = bad_crc.len() - 6;
    bad_crc[at] ^= 0xff;
    let gz_images = gzip(&images);
    vec![
        ("valid-two-digits", pair(&labels, &images)),
        ("valid-two-digits-gzip", pair(&gzip(&labels), &gz_images)),
        ("valid-one-image-2x3", tiny(1, 2, 3, 6, &[7])),
        ("edge-images-of-0x0", tiny(2, 0, 0, 0, &[1, 2])),
        (
            "edge-count-overflows",
            tiny(u32::MAX, u32::MAX, u32::MAX, 4, &[1]),
        ),
        (
            "edge-count-past-file",
            tiny(1_000_000_000, 28, 28, 64, &[1]),
        ),
        ("edge-pixels-truncated", tiny(2, 2, 3, 7, &[1, 2])),
        ("edge-pixels-extra", tiny(1, 2, 3, 9, &[1])),
        ("edge-label-count-mismatch", tiny(2, 2, 3, 12, &[1])),
        ("edge-label-not-a-digit", tiny(1, 2, 3, 6, &[10])),
        (
            "edge-bad-magic",
            pair(&labels, &idx_file(0x0802, &[2, 28, 28], &pixels[..64])),
        ),
        ("edge-short-header", pair(&labels[..6], &images[..10])),
        (
            "edge-gzip-bomb",
            pair(
                &gzip(&idx_file(0x0801, &[1], &[3])),
                &gzip(&idx_file(0x0803, &[1, 1, 1], &vec![0; 1 << 20])),
            ),
        ),
        (
            "edge-gzip-claim-past-deflate-bound",
            pair(
                &gzip(&labels),
                &gzip(&idx_file(0x0803, &[1_000_000_000, 28, 28], &[0; 16])),
            ),
        ),
        (
            "edge-gzip-truncated",
            pair(&gzip(&labels), &gz_images[..gz_images.len() / 2]),
        ),
        (
            "edge-gzip-bad-crc",
            pair(&gzip(&idx_file(0x0801, &[1], &[1])), &bad_crc),
        ),
        ("edge-empty", Vec::new()),
    ]
}

fn cifar() -> Vec<(&'static str, Vec<u8>)> {
    let record = |kind: u8, labels: &[u8], n: usize| {
        let mut v = vec![kind];
        for r in 0..n {
            v.extend_from_slice(labels);
            v.extend((0..3072).map(|i| (i / 32 + 7 * r) as u8));
        }
        v
    };
    let mut truncated = record(0, &[3], 1);
    truncated.truncate(3000);
    vec![
        ("valid-cifar10-one", record(0, &[3], 1)),
        ("valid-cifar10-two", record(0, &[9], 2)),
        ("valid-cifar100-one", record(1, &[2, 77], 1)),
        ("edge-cifar10-label-10", record(0, &[10], 1)),
        ("edge-cifar100-label-100", record(1, &[0, 100], 1)),
        ("edge-cifar100-read-as-cifar10", record(0, &[2, 77], 1)),
        ("edge-truncated", truncated),
        ("edge-no-records", vec![0]),
        ("edge-empty", Vec::new()),
    ]
}

/// An image encoded as `format`.
fn encode(img: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), format)
        .unwrap();
    out
}

fn rgb(w: u32, h: u32) -> image::DynamicImage {
    image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(40 * x) as u8, (30 * y) as u8, 128])
    }))
}

fn png(img: image::DynamicImage) -> Vec<u8> {
    encode(img, image::ImageFormat::Png)
}

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    encode(rgb(w, h), image::ImageFormat::Jpeg)
}

/// A PNG chunk: length, type, data, CRC.
fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    let mut v = (data.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(kind);
    v.extend_from_slice(data);
    v.extend(crc.sum().to_be_bytes());
    v
}

/// A PNG by hand: an 8-bit RGB header claiming `w` x `h`, then `idat`.
fn raw_png(w: u32, h: u32, idat: &[u8]) -> Vec<u8> {
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    v.extend(chunk(b"IHDR", &ihdr));
    v.extend(chunk(b"IDAT", idat));
    v.extend(chunk(b"IEND", &[]));
    v
}

/// A JPEG whose frame header (SOF0) claims `w` x `h`.
fn jpeg_claiming(w: u16, h: u16) -> Vec<u8> {
    let mut v = jpeg(16, 12);
    let sof = v.windows(2).position(|m| m == [0xff, 0xc0]).unwrap();
    v[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    v[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    v
}

/// `[resize - 1][crop - 1][size][seed]` then the image, as `fuzz::image_decode` reads it.
fn with_params(resize: u8, crop: u8, size: u8, image: &[u8]) -> Vec<u8> {
    let mut v = vec![resize - 1, crop - 1, size, 1];
    v.extend_from_slice(image);
    v
}

fn image_decode() -> Vec<(&'static str, Vec<u8>)> {
    let p = |image: &[u8]| with_params(8, 6, 8, image);
    let gray = image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(5, 9, |x, y| {
        image::Luma([(x * 50 + y) as u8])
    }));
    let rgba16 = image::DynamicImage::ImageRgba16(image::ImageBuffer::from_fn(4, 4, |x, y| {
        image::Rgba([(x * 9000) as u16, (y * 9000) as u16, 7, 65535])
    }));
    let gray_alpha = image::DynamicImage::ImageLumaA8(image::GrayAlphaImage::from_pixel(
        3,
        7,
        image::LumaA([90, 200]),
    ));
    let good = png(rgb(8, 6));
    let zlib_zeros = {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&[0; 4096]).unwrap();
        e.finish().unwrap()
    };
    let good_jpeg = jpeg(16, 12);
    vec![
        ("valid-png-rgb-8x6", p(&good)),
        ("valid-png-gray-5x9", p(&png(gray))),
        ("valid-png-rgba16-4x4", p(&png(rgba16))),
        ("valid-png-gray-alpha-3x7", p(&png(gray_alpha))),
        ("valid-png-1x1", p(&png(rgb(1, 1)))),
        ("valid-png-strip-1x64", p(&png(rgb(1, 64)))),
        ("valid-jpeg-16x12", p(&good_jpeg)),
        ("edge-png-0x0", p(&raw_png(0, 0, &zlib_zeros))),
        (
            "edge-png-claims-60000x60000",
            p(&raw_png(60000, 60000, &zlib_zeros)),
        ),
        // Under the `image` crate's own 512 MiB cap: 507 MB allocated for a
        // file of 100 bytes, before the new limit in proportion to the file.
        (
            "edge-png-claims-13000x13000",
            p(&raw_png(13000, 13000, &zlib_zeros)),
        ),
        ("edge-png-truncated", p(&good[..good.len() * 3 / 5])),
        ("edge-png-strip-1x1000", p(&png(rgb(1, 1000)))),
        (
            "edge-jpeg-claims-65000x65000",
            p(&jpeg_claiming(65000, 65000)),
        ),
        ("edge-jpeg-claims-0x0", p(&jpeg_claiming(0, 0))),
        ("edge-jpeg-truncated", p(&good_jpeg[..good_jpeg.len() / 2])),
        ("edge-crop-over-resize", with_params(4, 10, 8, &good)),
        ("edge-size-zero", with_params(8, 8, 0, &good)),
        ("edge-not-an-image", p(b"hello, not an image")),
        ("edge-empty", Vec::new()),
    ]
}

/// `[layout][params][u16 length][first image][second image]`, as
/// `fuzz::image_folder` reads it.
fn folder(layout: u8, resize: u8, crop: u8, first: &[u8], second: &[u8]) -> Vec<u8> {
    let mut v = vec![layout];
    v.extend(with_params(resize, crop, 8, &pair(first, second)));
    v
}

fn image_folder() -> Vec<(&'static str, Vec<u8>)> {
    let (a, b) = (png(rgb(8, 6)), jpeg(10, 10));
    vec![
        ("valid-two-classes", folder(0, 8, 6, &a, &b)),
        ("valid-nested-upper-case", folder(1 | 1 << 2, 8, 8, &a, &b)),
        ("valid-non-ascii-class", folder(0x10, 6, 4, &a, &b)),
        (
            "edge-hidden-and-not-images",
            folder(2 | 2 << 2, 8, 8, &a, &b),
        ),
        (
            "edge-class-of-hidden-files",
            folder(3 | 3 << 2, 8, 8, &a, &b),
        ),
        ("edge-broken-image", folder(0, 8, 8, &a, &b[..b.len() / 2])),
        ("edge-header-only", folder(0, 8, 8, &a, &a[..40])),
        (
            "edge-huge-claim",
            folder(0, 8, 8, &raw_png(60000, 60000, &[0; 8]), &b),
        ),
        ("edge-crop-over-resize", folder(0, 4, 9, &a, &b)),
    ]
}

/// A safetensors file by hand: the header's length, the header, the data.
fn safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(header.as_bytes());
    v.extend_from_slice(data);
    v
}

/// The tiny model's tensors as `(name, shape, f32 values)`.
fn tiny_tensors() -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let model = tiny_model().unwrap();
    residual_nn::named_tensors(&model)
        .into_iter()
        .map(|(n, p)| {
            let t = p.get();
            (n, t.dims().to_vec(), t.to_vec().unwrap())
        })
        .collect()
}

/// Serialises `(name, dtype, shape, bytes)` with `metadata`.
fn serialize(
    tensors: &[(String, safetensors::Dtype, Vec<usize>, Vec<u8>)],
    metadata: Option<std::collections::HashMap<String, String>>,
) -> Vec<u8> {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            let view = safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap();
            (n.clone(), view)
        })
        .collect();
    safetensors::serialize(views, metadata).unwrap()
}

/// The tiny model's tensors with each value written by `encode` as `dtype`.
fn tiny_as(
    dtype: safetensors::Dtype,
    encode: impl Fn(f32) -> Vec<u8>,
    rename: impl Fn(&str) -> String,
) -> Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> {
    tiny_tensors()
        .into_iter()
        .map(|(n, s, v)| {
            (
                rename(&n),
                dtype,
                s,
                v.iter().flat_map(|&x| encode(x)).collect(),
            )
        })
        .collect()
}

fn f32_bytes(x: f32) -> Vec<u8> {
    x.to_le_bytes().to_vec()
}

fn tiny_weights_file() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    save_safetensors(&tiny_model().unwrap(), &path).unwrap();
    std::fs::read(path).unwrap()
}

fn safetensors_weights() -> Vec<(&'static str, Vec<u8>)> {
    use safetensors::Dtype;
    let same = |n: &str| n.to_string();
    let good = tiny_weights_file();
    // bfloat16 is the upper half of an f32 (rounded toward zero here).
    let bf16 = tiny_as(
        Dtype::BF16,
        |x| (x.to_bits() >> 16).to_le_bytes()[..2].to_vec(),
        same,
    );
    let f64s = tiny_as(Dtype::F64, |x| (x as f64).to_le_bytes().to_vec(), same);
    let prefixed = tiny_as(Dtype::F32, f32_bytes, |n| format!("module.{n}"));
    let transposed: Vec<_> = tiny_as(Dtype::F32, f32_bytes, same)
        .into_iter()
        .map(|(n, d, mut s, b)| {
            s.reverse();
            (n, d, s, b)
        })
        .collect();
    let state_meta = std::collections::HashMap::from([("residual".into(), "{}".into())]);
    let one = |dtype: &str, shape: &str, offsets: &str, data: &[u8]| {
        let header =
            format!(r#"{{"w":{{"dtype":"{dtype}","shape":{shape},"data_offsets":{offsets}}}}}"#);
        safetensors(&header, data)
    };
    let mut header_past_file = good.clone();
    header_past_file[..8].copy_from_slice(&1_000_000_000u64.to_le_bytes());
    let mut header_max = good.clone();
    header_max[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    vec![
        ("valid-tiny-model", good.clone()),
        ("valid-bf16", serialize(&bf16, None)),
        ("valid-f64", serialize(&f64s, None)),
        ("valid-module-prefix", serialize(&prefixed, None)),
        ("edge-header-past-file", header_past_file),
        ("edge-header-length-max", header_max),
        ("edge-header-length-zero", 0u64.to_le_bytes().to_vec()),
        ("edge-invalid-json", safetensors("{\"w\": {not json", &[])),
        ("edge-deep-json", safetensors(&"[".repeat(1000), &[])),
        (
            "edge-offsets-past-data",
            one("F32", "[2]", "[0,1000000]", &[0; 8]),
        ),
        ("edge-offsets-reversed", one("F32", "[2]", "[8,0]", &[0; 8])),
        (
            "edge-dtype-size-mismatch",
            one("F32", "[3]", "[0,8]", &[0; 8]),
        ),
        (
            "edge-dtype-unsupported",
            one("BOOL", "[2]", "[0,2]", &[1, 0]),
        ),
        (
            "edge-shape-overflows",
            one("F32", "[4294967296,4294967296]", "[0,8]", &[0; 8]),
        ),
        (
            "edge-empty-with-huge-dims",
            one("F32", "[0,1099511627776,1099511627776]", "[0,0]", &[]),
        ),
        ("edge-shape-mismatch", serialize(&transposed, None)),
        (
            "edge-training-state",
            serialize(&prefixed, Some(state_meta)),
        ),
        ("edge-truncated", good[..good.len() - 7].to_vec()),
        ("edge-empty", Vec::new()),
    ]
}

/// The run a checkpoint seed records.
fn meta() -> CheckpointMeta {
    let model_config = match residual_zoo::resolve("resnet20", &ModelOptions::default()) {
        Ok(ModelConfig::Resnet(c)) => ModelConfig::Resnet(residual_zoo::ResNetConfig {
            layers: vec![1],
            widths: vec![2],
            stem_width: 2,
            in_channels: 1,
            num_classes: 2,
            ..c
        }),
        other => panic!("resnet20 resolves: {other:?}"),
    };
    CheckpointMeta {
        format: checkpoint::FORMAT.into(),
        epoch: 1,
        optimizer_step: 3,
        batch_in_epoch: 0,
        config: TrainConfig {
            model: "resnet20".into(),
            model_config,
            epochs: 2,
            batch_size: 2,
            lr: 0.1,
            optimizer: OptimizerConfig::adamw(),
            schedule: Schedule::Step {
                step_size: 2,
                gamma: 0.5,
            },
            clip_grad_norm: None,
            label_smoothing: 0.0,
            seed: 0,
            no_decay_norm_bias: true,
            transforms: Vec::new(),
            log_every: 1,
            amp: None,
            data: Some(DataSource {
                data: "mnist".into(),
                val: None,
                image_size: None,
                crop_scale: None,
                val_fraction: None,
                val_last: false,
            }),
            sync_bn: false,
            precise_bn: 0,
        },
        scaler: None,
    }
}

/// The metadata of a checkpoint of the previous format (`norm` / `act`
/// beside a preset's name, no model config).
fn meta_v1_json() -> String {
    let mut v = serde_json::to_value(meta()).unwrap();
    v["format"] = "residual-checkpoint-v1".into();
    let config = v["config"].as_object_mut().unwrap();
    config.remove("model_config");
    config.insert("norm".into(), "group".into());
    config.insert("act".into(), "relu".into());
    v.to_string()
}

/// A state file of the tiny model: `model.*` tensors, with `optim.*`
/// moments when `optim`, under `meta_json`.
fn state_file(
    meta_json: &str,
    optim: bool,
    change: impl Fn(&mut (String, safetensors::Dtype, Vec<usize>, Vec<u8>)),
) -> Vec<u8> {
    let mut tensors = tiny_as(safetensors::Dtype::F32, f32_bytes, |n| format!("model.{n}"));
    if optim {
        for (n, s, v) in tiny_tensors() {
            if n.ends_with("weight") {
                for m in ["m", "v"] {
                    let bytes = v.iter().flat_map(|&x| f32_bytes(x.abs())).collect();
                    let t = (
                        format!("optim.{n}.{m}"),
                        safetensors::Dtype::F32,
                        s.clone(),
                        bytes,
                    );
                    tensors.push(t);
                }
            }
        }
    }
    tensors.iter_mut().for_each(change);
    let metadata = std::collections::HashMap::from([("residual".into(), meta_json.into())]);
    serialize(&tensors, Some(metadata))
}

fn saved_checkpoint() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model().unwrap();
    let opt = Optimizer::new(
        OptimizerConfig::adamw(),
        residual_nn::named_tensors(&model),
        true,
    );
    checkpoint::save(dir.path(), &model, &opt, &meta()).unwrap();
    std::fs::read(dir.path().join("state.safetensors")).unwrap()
}

fn checkpoint_state() -> Vec<(&'static str, Vec<u8>)> {
    let v2 = serde_json::to_string(&meta()).unwrap();
    let keep = |_: &mut (String, safetensors::Dtype, Vec<usize>, Vec<u8>)| {};
    let with = |key: &str, value: serde_json::Value| {
        let mut m = serde_json::to_value(meta()).unwrap();
        m[key] = value;
        state_file(&m.to_string(), false, keep)
    };
    let mut schedule = serde_json::to_value(meta()).unwrap();
    schedule["config"]["schedule"] =
        serde_json::json!({"kind": "step", "step_size": 0, "gamma": 2.0});
    let good = saved_checkpoint();
    let mut header_past_file = good.clone();
    header_past_file[..8].copy_from_slice(&(good.len() as u64).to_le_bytes());
    let v1_model = |name: &str| meta_v1_json().replace("\"resnet20\"", &format!("\"{name}\""));
    vec![
        ("valid-saved", good.clone()),
        ("valid-with-optimizer-state", state_file(&v2, true, keep)),
        ("valid-format-v1", state_file(&meta_v1_json(), false, keep)),
        ("edge-no-metadata", tiny_weights_file()),
        (
            "edge-format-unknown",
            with("format", "residual-checkpoint-v9".into()),
        ),
        (
            "edge-metadata-not-json",
            state_file("{not json", false, keep),
        ),
        (
            "edge-v1-unknown-model",
            state_file(&v1_model("resnet7"), false, keep),
        ),
        (
            "edge-v1-model-file",
            state_file(&v1_model("/no/such/model.json"), false, keep),
        ),
        ("edge-epoch-and-step-max", {
            let mut m = serde_json::to_value(meta()).unwrap();
            m["epoch"] = u64::MAX.into();
            m["optimizer_step"] = u64::MAX.into();
            state_file(&m.to_string(), false, keep)
        }),
        (
            "edge-schedule-step-size-zero",
            state_file(&schedule.to_string(), false, keep),
        ),
        (
            "edge-tensor-bf16",
            state_file(&v2, false, |t| {
                if t.0 == "model.fc.bias" {
                    t.1 = safetensors::Dtype::BF16;
                    t.3.truncate(t.3.len() / 2);
                }
            }),
        ),
        (
            "edge-model-shape-mismatch",
            state_file(&v2, false, |t| t.2.reverse()),
        ),
        (
            "edge-optimizer-shape-mismatch",
            state_file(&v2, true, |t| {
                if t.0.starts_with("optim.") {
                    t.2.reverse();
                }
            }),
        ),
        (
            "edge-model-tensor-missing",
            state_file(&v2, false, |t| {
                if t.0 == "model.fc.weight" {
                    t.0 = "model.fc.weight_renamed".into();
                }
            }),
        ),
        ("edge-header-past-file", header_past_file),
        ("edge-truncated", good[..good.len() / 2].to_vec()),
        ("edge-empty", Vec::new()),
    ]
}

fn checkpoint_meta() -> Vec<(&'static str, Vec<u8>)> {
    let v2 = serde_json::to_value(meta()).unwrap();
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = v2.clone();
        f(&mut v);
        v.to_string().into_bytes()
    };
    let v1 = meta_v1_json();
    vec![
        ("valid-v2", v2.to_string().into_bytes()),
        ("valid-v1", v1.clone().into_bytes()),
        ("edge-not-json", b"{\"format\": residual".to_vec()),
        ("edge-deep-nesting", "[".repeat(1000).into_bytes()),
        (
            "edge-format-missing",
            edit(&|v| v["format"] = serde_json::Value::Null),
        ),
        (
            "edge-v1-config-not-an-object",
            br#"{"format":"residual-checkpoint-v1","config":[1,2]}"#.to_vec(),
        ),
        (
            "edge-v1-no-model",
            br#"{"format":"residual-checkpoint-v1","config":{"norm":"batch"}}"#.to_vec(),
        ),
        (
            "edge-v1-bad-norm",
            v1.replace("\"group\"", "\"weird\"").into_bytes(),
        ),
        (
            "edge-epoch-1e400",
            v2.to_string()
                .replace("\"epoch\":1,", "\"epoch\":1e400,")
                .into_bytes(),
        ),
        (
            "edge-width-overflows",
            edit(&|v| {
                v["config"]["model_config"]["widths"] = serde_json::json!([u64::MAX]);
                v["config"]["model_config"]["block"] = "bottleneck".into();
            }),
        ),
        ("edge-negative-epoch", edit(&|v| v["epoch"] = (-1).into())),
        ("edge-empty", Vec::new()),
    ]
}

/// A config file seed: `[kind][text]`, kind 1 for TOML.
fn config(toml: bool, text: &str) -> Vec<u8> {
    let mut v = vec![toml as u8];
    v.extend_from_slice(text.as_bytes());
    v
}

fn model_config() -> Vec<(&'static str, Vec<u8>)> {
    let value = |name: &str| {
        let c = residual_zoo::resolve(name, &ModelOptions::default()).unwrap();
        serde_json::to_value(&c).unwrap()
    };
    let json = |name: &str| serde_json::to_string_pretty(&value(name)).unwrap();
    let edited = |name: &str, key: &str, v: serde_json::Value| {
        let mut c = value(name);
        c[key] = v;
        c.to_string()
    };
    let toml = "family = \"resnet\"\nblock = \"basic\"\nlayers = [2, 2]\nwidths = [16, 32]\n\
                stem = \"cifar\"\nstem_width = 16\nnum_classes = 10\n";
    let resnet20 = json("resnet20");
    let mut invalid_utf8 = config(false, &resnet20);
    invalid_utf8[5] = 0xff;
    vec![
        ("valid-resnet20-json", config(false, &resnet20)),
        ("valid-resnet50-json", config(false, &json("resnet50"))),
        ("valid-cifar-toml", config(true, toml)),
        (
            "edge-width-overflows-json",
            config(
                false,
                &edited("resnet50", "widths", serde_json::json!([64, u64::MAX])),
            ),
        ),
        (
            "edge-width-overflows-toml",
            config(
                true,
                &toml
                    .replace("basic", "bottleneck")
                    .replace("32]", "9223372036854775807]"),
            ),
        ),
        (
            "edge-layers-too-many",
            config(
                false,
                &edited("resnet20", "layers", serde_json::json!([1025])),
            ),
        ),
        (
            "edge-no-classes",
            config(true, &toml.replace("= 10", "= 0")),
        ),
        (
            "edge-unknown-field",
            config(true, &format!("{toml}depth = 3\n")),
        ),
        (
            "edge-unknown-family",
            config(true, &toml.replace("\"resnet\"", "\"vit\"")),
        ),
        (
            "edge-no-family",
            config(true, &toml.replace("family", "# family")),
        ),
        ("edge-deep-json", config(false, &"[".repeat(1000))),
        (
            "edge-deep-toml",
            config(true, &format!("a = {}", "[".repeat(1000))),
        ),
        ("edge-invalid-utf8", invalid_utf8),
        ("edge-empty", vec![0]),
    ]
}
