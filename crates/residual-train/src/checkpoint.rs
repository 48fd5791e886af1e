//! Checkpoints: the weights for `residual predict` and PyTorch, plus the
//! training state that makes `--resume` continue exactly.
//!
//! A run folder holds `model.safetensors` (weights only, torchvision names),
//! `model.json` (the model's config: `--model runs/x/model.json` rebuilds the
//! model the weights belong to) and `state.safetensors`: the weights again (`model.` prefix), the optimizer
//! state (`optim.<param>.m` / `.v`) and, in the file's metadata, a JSON
//! [`CheckpointMeta`]. `state.safetensors` is the checkpoint: resuming reads
//! only it, and it is written first. `model.safetensors` and `model.json` are
//! exports of it, written after it, and `model.safetensors` carries the
//! checkpoint's epoch and step in its metadata ([`EXPORT_EPOCH_KEY`],
//! [`EXPORT_STEP_KEY`]): a run killed between the two writes leaves an export
//! one checkpoint behind, which [`export_is_current`] detects and the next
//! start rewrites from the state. Each file is written to a temporary sibling
//! and renamed (see [`atomic_write`]): a crash mid-save leaves the previous
//! file whole, and the next start removes the temporary.

use crate::config::TrainConfig;
use crate::optim::Optimizer;
use crate::scaler::GradScaler;
use residual_nn::weights::{
    atomic_write, read_regular_file, write_tensors_with_metadata, TRAINING_STATE_KEY,
};
use residual_nn::{named_tensors, Module};
use residual_tensor::{Device, Error, Result, Tensor};
use residual_zoo::ModelOptions;
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The format tag in the metadata.
pub const FORMAT: &str = "residual-checkpoint-v2";

/// The format before models had a config of their own: its run config named
/// a zoo ResNet preset with `norm` and `act` beside it. It still loads.
const FORMAT_V1: &str = "residual-checkpoint-v1";
const META_KEY: &str = TRAINING_STATE_KEY;

/// The metadata key of `model.safetensors` that names the checkpoint's epoch.
pub const EXPORT_EPOCH_KEY: &str = "residual_epoch";
/// The metadata key of `model.safetensors` that names the checkpoint's optimizer step.
pub const EXPORT_STEP_KEY: &str = "residual_step";

/// What a checkpoint records besides tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Always [`FORMAT`].
    pub format: String,
    /// Completed epochs.
    pub epoch: u64,
    /// Optimizer steps taken.
    pub optimizer_step: u64,
    /// Batches of the next epoch already trained (a run stopped mid-epoch).
    #[serde(default)]
    pub batch_in_epoch: u64,
    /// The run's configuration (resume continues it).
    pub config: TrainConfig,
    /// The loss scaler's state (f16 mixed precision).
    #[serde(default)]
    pub scaler: Option<GradScaler>,
}

/// Writes the checkpoint `state.safetensors` into `dir` (created if needed),
/// then its exports `model.safetensors` and `model.json`. Weights holding a
/// NaN or an infinity are refused: a diverged run never overwrites its last
/// good checkpoint.
pub fn save(dir: &Path, model: &dyn Module, opt: &Optimizer, meta: &CheckpointMeta) -> Result<()> {
    if let Some(name) = first_non_finite(model)? {
        return Err(Error::arg(
            "train",
            format!(
                "diverged: {name} holds NaN or infinite values after epoch {} (step {}); not saved, \
                 so {} keeps the last good checkpoint. Start again with a lower --lr or --clip-grad-norm",
                meta.epoch,
                meta.optimizer_step,
                dir.display()
            ),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::Io {
        path: dir.display().to_string(),
        msg: e.to_string(),
    })?;
    let mut tensors: Vec<(String, Tensor)> = named_tensors(model)
        .into_iter()
        .map(|(n, p)| (format!("model.{n}"), p.get()))
        .collect();
    let (state, _) = opt.state_tensors();
    tensors.extend(state.into_iter().map(|(n, t)| (format!("optim.{n}"), t)));
    let owned: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, t)| {
            Ok((
                n.clone(),
                t.dims().to_vec(),
                t.to_vec()?.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ))
        })
        .collect::<Result<_>>()?;
    let views: Vec<(String, TensorView<'_>)> = owned
        .iter()
        .map(|(n, s, b)| {
            TensorView::new(Dtype::F32, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::Weights(e.to_string()))
        })
        .collect::<Result<_>>()?;
    let json = serde_json::to_string(meta).map_err(|e| Error::Weights(e.to_string()))?;
    let bytes = safetensors::serialize(views, Some(HashMap::from([(META_KEY.to_string(), json)])))
        .map_err(|e| Error::Weights(e.to_string()))?;
    atomic_write(&dir.join("state.safetensors"), &bytes)?;
    export_model(dir, model, meta)
}

/// Writes the exports of a checkpoint: `model.safetensors` (the weights,
/// stamped with the checkpoint's epoch and step) and `model.json`.
pub fn export_model(dir: &Path, model: &dyn Module, meta: &CheckpointMeta) -> Result<()> {
    write_stamped_weights(&dir.join("model.safetensors"), model, meta, None)?;
    let model_json = serde_json::to_string_pretty(&meta.config.model_config)
        .map_err(|e| Error::Weights(e.to_string()))?;
    atomic_write(&dir.join("model.json"), model_json.as_bytes())
}

/// The metadata key of `model_best.safetensors` that holds its held-out accuracy.
pub const BEST_ACC_KEY: &str = "residual_test_acc";

/// The held-out accuracy of `dir/model_best.safetensors`, when there is one.
pub fn best_accuracy(dir: &Path) -> Option<f32> {
    let header = read_header(&dir.join("model_best.safetensors")).ok()?;
    header
        .get("__metadata__")?
        .get(BEST_ACC_KEY)?
        .as_str()?
        .parse()
        .ok()
}

/// Writes `model`'s weights as `dir/model_best.safetensors` (stamped with
/// the epoch, step and `acc`) when `acc` beats the best export there, or
/// there is none: timm's `model_best`. Returns whether it did.
pub fn export_best(
    dir: &Path,
    model: &dyn Module,
    meta: &CheckpointMeta,
    acc: f32,
) -> Result<bool> {
    if best_accuracy(dir).is_some_and(|best| best >= acc) || !acc.is_finite() {
        return Ok(false);
    }
    let best = (BEST_ACC_KEY, acc.to_string());
    write_stamped_weights(&dir.join("model_best.safetensors"), model, meta, Some(best))?;
    Ok(true)
}

/// Writes `model`'s weights (PyTorch names) to `path`, stamped in the
/// metadata with the checkpoint's epoch and step, and `extra` beside them.
fn write_stamped_weights(
    path: &Path,
    model: &dyn Module,
    meta: &CheckpointMeta,
    extra: Option<(&str, String)>,
) -> Result<()> {
    let tensors: Vec<(String, Tensor)> = named_tensors(model)
        .into_iter()
        .map(|(n, p)| (n, p.get()))
        .collect();
    let mut stamp = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        (EXPORT_EPOCH_KEY.to_string(), meta.epoch.to_string()),
        (EXPORT_STEP_KEY.to_string(), meta.optimizer_step.to_string()),
    ]);
    stamp.extend(extra.map(|(k, v)| (k.to_string(), v)));
    write_tensors_with_metadata(path, &tensors, Some(stamp))
}

/// The first tensor of `model` (parameter or buffer) holding a NaN or an
/// infinity, if any.
pub fn first_non_finite(model: &dyn Module) -> Result<Option<String>> {
    for (name, p) in named_tensors(model) {
        if crate::scaler::has_non_finite(&p.get())? {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// Whether `dir/model.safetensors` is the export of the checkpoint `meta`
/// describes (its stamp names the same epoch and step). A missing,
/// unreadable or unstamped export is not current.
pub fn export_is_current(dir: &Path, meta: &CheckpointMeta) -> bool {
    let Ok(header) = read_header(&dir.join("model.safetensors")) else {
        return false;
    };
    let stamp = |key: &str| {
        header
            .get("__metadata__")
            .and_then(|m| m.get(key))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    stamp(EXPORT_EPOCH_KEY) == Some(meta.epoch.to_string())
        && stamp(EXPORT_STEP_KEY) == Some(meta.optimizer_step.to_string())
        && dir.join("model.json").is_file()
}

/// The JSON header of a safetensors file, read without reading its tensors
/// (the header's length is checked against the file's before it is read).
fn read_header(path: &Path) -> Result<serde_json::Value> {
    use std::io::Read;
    let io = |e: std::io::Error| Error::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    let mut n = [0u8; 8];
    f.read_exact(&mut n).map_err(io)?;
    let n = u64::from_le_bytes(n);
    if n > len.saturating_sub(8) || n > 100 << 20 {
        return Err(Error::Weights(format!(
            "{}: header of {n} bytes in a file of {len}: not a safetensors file, or truncated",
            path.display()
        )));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header).map_err(io)?;
    serde_json::from_slice(&header).map_err(|e| {
        Error::Weights(format!(
            "{}: unreadable safetensors header ({e})",
            path.display()
        ))
    })
}

/// Reads only the metadata of `dir/state.safetensors` (its header, not its
/// tensors): what a resume checks its flags against before loading anything.
pub fn read_meta(dir: &Path) -> Result<CheckpointMeta> {
    let path = dir.join("state.safetensors");
    let what = path.display().to_string();
    let header = read_header(&path)?;
    let json = header
        .get("__metadata__")
        .and_then(|m| m.get(META_KEY))
        .and_then(|v| v.as_str())
        .ok_or_else(|| {
            Error::Weights(format!(
                "{what}: not a residual checkpoint (no \"{META_KEY}\" metadata)"
            ))
        })?;
    parse_meta(json).map_err(|e| Error::Weights(format!("{what}: {e}")))
}

/// Reads the metadata and tensors of `dir/state.safetensors`.
pub fn read(dir: &Path, dev: &Device) -> Result<(CheckpointMeta, BTreeMap<String, Tensor>)> {
    let path = dir.join("state.safetensors");
    let bytes = read_regular_file(&path)?;
    let what = path.display().to_string();
    let (_, md) = SafeTensors::read_metadata(&bytes).map_err(|e| {
        Error::Weights(format!(
            "{what}: not a valid safetensors file ({e}); truncated?"
        ))
    })?;
    let json = md
        .metadata()
        .as_ref()
        .and_then(|m| m.get(META_KEY))
        .ok_or_else(|| {
            Error::Weights(format!(
                "{what}: not a residual checkpoint (no \"{META_KEY}\" metadata)"
            ))
        })?;
    let meta = parse_meta(json).map_err(|e| Error::Weights(format!("{what}: {e}")))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::Weights(format!("{what}: corrupt tensors ({e})")))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(Error::Weights(format!(
                "{what}: tensor {name} is {:?}, checkpoints hold f32",
                view.dtype()
            )));
        }
        let v: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.insert(name, Tensor::from_vec(v, view.shape().to_vec(), dev)?);
    }
    Ok((meta, out))
}

/// Parses checkpoint metadata (the JSON in a checkpoint's header) of this
/// format or of [`FORMAT_V1`] (whose `norm` / `act` become the model's settings).
pub fn parse_meta(json: &str) -> Result<CheckpointMeta> {
    let unreadable = |e: String| Error::Weights(format!("unreadable checkpoint metadata ({e})"));
    let mut value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| unreadable(e.to_string()))?;
    let format = value["format"].as_str().unwrap_or_default().to_string();
    if format == FORMAT_V1 {
        let config = value
            .get_mut("config")
            .and_then(|c| c.as_object_mut())
            .ok_or_else(|| unreadable("no run config".into()))?;
        let mut opts = ModelOptions::default();
        for key in ["norm", "act"] {
            if let Some(v) = config.remove(key) {
                opts = opts.set(key, v);
            }
        }
        let model = config
            .get("model")
            .and_then(|m| m.as_str())
            .ok_or_else(|| unreadable("no model name".into()))?;
        let model_config = residual_zoo::resolve(model, &opts)?;
        let model_config =
            serde_json::to_value(model_config).map_err(|e| unreadable(e.to_string()))?;
        config.insert("model_config".into(), model_config);
        value["format"] = FORMAT.into();
    } else if format != FORMAT {
        return Err(Error::Weights(format!(
            "checkpoint format {format:?}, this build reads {FORMAT:?} and {FORMAT_V1:?}"
        )));
    }
    serde_json::from_value(value).map_err(|e| unreadable(e.to_string()))
}

/// Restores model weights and optimizer state from a checkpoint's tensors.
pub fn restore(
    model: &dyn Module,
    opt: &mut Optimizer,
    meta: &CheckpointMeta,
    tensors: &BTreeMap<String, Tensor>,
) -> Result<()> {
    let mut missing = Vec::new();
    for (name, slot) in named_tensors(model) {
        match tensors.get(&format!("model.{name}")) {
            Some(t) if t.shape() == slot.get().shape() => slot.set(t.clone()),
            Some(t) => {
                return Err(Error::Weights(format!(
                    "checkpoint tensor model.{name} is {}, model has {}",
                    t.shape(),
                    slot.get().shape()
                )))
            }
            None => missing.push(name),
        }
    }
    if !missing.is_empty() {
        return Err(Error::Weights(format!(
            "checkpoint lacks model tensors: {}",
            missing.join(", ")
        )));
    }
    let optim: BTreeMap<String, Tensor> = tensors
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("optim.").map(|k| (k.to_string(), v.clone())))
        .collect();
    opt.load_state(&optim, meta.optimizer_step)
}
