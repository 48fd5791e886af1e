//! Safetensors weights with PyTorch's names: load (strict or not) and save.
//!
//! A torchvision `state_dict` saved with `safetensors.torch.save_file` loads
//! with no renaming. Loading converts f16 / bf16 / f64 / integer tensors to f32
//! (int64 `num_batches_tracked` included) and strips a `module.` prefix
//! (checkpoints saved from `DataParallel`). Saving writes f32, with
//! `num_batches_tracked` as int64 as PyTorch has it, through a temporary file
//! and a rename, so a crash never leaves a half-written file in place.
//!
//! Reads are bounded by the file's real size: a device such as `/dev/zero`, a
//! folder or a pipe is refused instead of read without end.

use crate::module::{named_tensors, Module};
use residual_tensor::{Device, Error, Result, Tensor};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

/// What a load matched, and what it could not.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LoadReport {
    /// Keys loaded into the model.
    pub loaded: Vec<String>,
    /// Model keys the file lacks.
    pub missing: Vec<String>,
    /// File keys the model lacks.
    pub unexpected: Vec<String>,
    /// Keys in both with different shapes: `(key, shape in file, shape in model)`.
    pub mismatched: Vec<(String, Vec<usize>, Vec<usize>)>,
}

impl LoadReport {
    /// Whether every key matched.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} loaded", self.loaded.len())?;
        if !self.missing.is_empty() {
            write!(f, "; missing from the file: {}", self.missing.join(", "))?;
        }
        if !self.unexpected.is_empty() {
            write!(
                f,
                "; unexpected (not in the model): {}",
                self.unexpected.join(", ")
            )?;
        }
        for (k, file, model) in &self.mismatched {
            write!(
                f,
                "; shape mismatch for {k}: file {file:?}, model {model:?}"
            )?;
        }
        Ok(())
    }
}

fn io_err(path: &Path, e: impl fmt::Display) -> Error {
    Error::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    }
}

/// Reads a whole regular file, at most its size on disk: a device
/// (`/dev/zero`), a folder or a pipe is an error naming the path, not an
/// endless read.
pub fn read_regular_file(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
    let meta = file.metadata().map_err(|e| io_err(path, e))?;
    if !meta.is_file() {
        return Err(io_err(
            path,
            "not a regular file (a folder, a device or a pipe); expected a file",
        ));
    }
    let len = meta.len();
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    // A file that grows while it is read stops at the size it had.
    file.take(len)
        .read_to_end(&mut bytes)
        .map_err(|e| io_err(path, e))?;
    Ok(bytes)
}

/// Reads every tensor of a safetensors file as f32 on `dev`, names as stored.
pub fn read_tensors(path: impl AsRef<Path>, dev: &Device) -> Result<BTreeMap<String, Tensor>> {
    let path = path.as_ref();
    let bytes = read_regular_file(path)?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| {
        Error::Weights(format!(
            "{}: not a valid safetensors file ({e})",
            path.display()
        ))
    })?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let data = to_f32(&name, &view)?;
        out.insert(name, Tensor::from_vec(data, view.shape().to_vec(), dev)?);
    }
    Ok(out)
}

/// Converts a stored tensor to f32 values.
fn to_f32(name: &str, v: &TensorView<'_>) -> Result<Vec<f32>> {
    let b = v.data();
    let chunks = |n: usize| b.chunks_exact(n);
    Ok(match v.dtype() {
        Dtype::F32 => chunks(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => chunks(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => chunks(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::F64 => chunks(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
        Dtype::I64 => chunks(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
        Dtype::I32 => chunks(4)
            .map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")) as f32)
            .collect(),
        other => {
            return Err(Error::Weights(format!(
                "tensor {name} has dtype {other:?}; expected f32, f16, bf16, f64, i64 or i32"
            )))
        }
    })
}

/// Loads a safetensors file into `model`. `strict`: any missing, unexpected or
/// shape-mismatched key fails the whole load with one error listing them all
/// (and nothing is changed); otherwise what matches is loaded and the report
/// says what did not (a backbone without its head, a new classifier).
pub fn load_safetensors(
    model: &dyn Module,
    path: impl AsRef<Path>,
    strict: bool,
) -> Result<LoadReport> {
    let path = path.as_ref();
    let bytes = read_regular_file(path)?;
    load_safetensors_bytes(model, &bytes, strict).map_err(|e| match e {
        Error::Weights(m) => Error::Weights(format!("{}: {m}", path.display())),
        other => other,
    })
}

/// [`load_safetensors`] from bytes in memory.
pub fn load_safetensors_bytes(
    model: &dyn Module,
    bytes: &[u8],
    strict: bool,
) -> Result<LoadReport> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| {
        Error::Weights(format!(
            "not a valid safetensors file ({e}); is it truncated?"
        ))
    })?;
    refuse_training_state(bytes)?;
    let mut file: HashMap<String, TensorView<'_>> = HashMap::new();
    for (name, view) in st.tensors() {
        if !matches!(
            view.dtype(),
            Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64 | Dtype::I64 | Dtype::I32
        ) {
            return Err(Error::Weights(format!(
                "tensor {name} has dtype {:?}; expected f32, f16, bf16, f64, i64 or i32",
                view.dtype()
            )));
        }
        let key = name.strip_prefix("module.").unwrap_or(&name).to_string();
        file.insert(key, view);
    }
    let mut report = LoadReport::default();
    let mut staged = Vec::new();
    let slots = named_tensors(model);
    for (name, slot) in &slots {
        let current = slot.get();
        match file.remove(name) {
            None => report.missing.push(name.clone()),
            Some(view) if view.shape() != current.dims() => report.mismatched.push((
                name.clone(),
                view.shape().to_vec(),
                current.dims().to_vec(),
            )),
            Some(view) => {
                let t = Tensor::from_vec(
                    to_f32(name, &view)?,
                    current.shape().clone(),
                    current.device(),
                )?;
                staged.push((slot.clone(), t));
                report.loaded.push(name.clone());
            }
        }
    }
    report.unexpected = file.into_keys().collect();
    report.unexpected.sort();
    if strict && !report.is_complete() {
        return Err(Error::Weights(format!("strict load failed: {report}")));
    }
    for (slot, t) in staged {
        slot.set(t);
    }
    Ok(report)
}

/// The metadata key of `residual train`'s training-state files
/// (`state.safetensors`: the weights under `model.`, the optimizer state under
/// `optim.`, the run in the metadata).
pub const TRAINING_STATE_KEY: &str = "residual";

/// An error when `bytes` is a training-state file rather than model weights:
/// its keys would all be "unexpected" and the model's all "missing", which
/// says nothing about the real mistake.
fn refuse_training_state(bytes: &[u8]) -> Result<()> {
    let Ok((_, meta)) = SafeTensors::read_metadata(bytes) else {
        return Ok(());
    };
    let is_state = meta
        .metadata()
        .as_ref()
        .is_some_and(|m| m.contains_key(TRAINING_STATE_KEY));
    if is_state {
        return Err(Error::Weights(
            "this is a training-state file (what `residual train --resume` reads: the weights \
             under `model.`, the optimizer state under `optim.`), not model weights; load the \
             run folder's model.safetensors instead"
                .into(),
        ));
    }
    Ok(())
}

/// Saves every parameter and buffer of `model` (PyTorch names) atomically.
pub fn save_safetensors(model: &dyn Module, path: impl AsRef<Path>) -> Result<()> {
    let tensors: Vec<(String, Tensor)> = named_tensors(model)
        .into_iter()
        .map(|(n, p)| (n, p.get()))
        .collect();
    write_tensors(path, &tensors)
}

/// Writes named tensors as a safetensors file, atomically (temporary file in
/// the same folder, then rename). `num_batches_tracked` is stored as int64.
pub fn write_tensors(path: impl AsRef<Path>, tensors: &[(String, Tensor)]) -> Result<()> {
    write_tensors_with_metadata(path, tensors, None)
}

/// [`write_tensors`] with string metadata in the file's header.
pub fn write_tensors_with_metadata(
    path: impl AsRef<Path>,
    tensors: &[(String, Tensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let path = path.as_ref();
    let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let v = t.to_vec()?;
        let (dtype, bytes) = if name.ends_with("num_batches_tracked") {
            (
                Dtype::I64,
                v.iter().flat_map(|&x| (x as i64).to_le_bytes()).collect(),
            )
        } else {
            (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect())
        };
        owned.push((name.clone(), dtype, t.dims().to_vec(), bytes));
    }
    let views: Vec<(String, TensorView<'_>)> = owned
        .iter()
        .map(|(n, d, s, b)| {
            TensorView::new(*d, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::Weights(format!("{n}: {e}")))
        })
        .collect::<Result<_>>()?;
    let bytes =
        safetensors::serialize(views, metadata).map_err(|e| Error::Weights(e.to_string()))?;
    atomic_write(path, &bytes)
}

/// The marker between a file's name and the writer's process id in the name
/// of a temporary: `.NAME.tmp-PID-N`.
const TMP_MARK: &str = ".tmp-";

/// Writes `bytes` to `path` through a temporary sibling file and a rename:
/// the file is synced before the rename and its folder after, so after a
/// crash or a power cut `path` holds the old contents or the new ones, whole.
/// Temporaries are named `.NAME.tmp-PID-N`, unique per write (two saves into
/// one folder never collide); a failed write removes its temporary.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io_err(path, "not a file path"))?;
    let tmp = dir.join(format!(
        ".{}{TMP_MARK}{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let name = name.to_string_lossy();
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        crash_point(&format!("before-rename:{name}"));
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(path, e));
    }
    sync_folder(dir).map_err(|e| io_err(dir, e))?;
    crash_point(&format!("after-rename:{name}"));
    Ok(())
}

/// The environment variable that makes [`crash_point`] abort the process:
/// `POINT` or `POINT@K` (the K-th time the point is passed, from 1).
pub const CRASH_AT_ENV: &str = "RESIDUAL_CRASH_AT";

/// A named point where a test may crash the process, as a kill -9 or a power
/// cut would, to check that what is on disk then is whole: when
/// [`CRASH_AT_ENV`] names this point (and this is its K-th pass), the process
/// aborts at once, with no cleanup. The points are `before-rename:FILE` and
/// `after-rename:FILE` in [`atomic_write`], and those the trainer names.
/// Without the variable this is one environment lookup.
pub fn crash_point(point: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static PASSES: AtomicU64 = AtomicU64::new(0);
    let Ok(want) = std::env::var(CRASH_AT_ENV) else {
        return;
    };
    let (name, k) = match want.rsplit_once('@') {
        Some((n, k)) => (n, k.parse().unwrap_or(1)),
        None => (want.as_str(), 1),
    };
    if name == point && PASSES.fetch_add(1, Ordering::SeqCst) + 1 == k {
        eprintln!("{CRASH_AT_ENV}: crashing at {point}");
        std::process::abort();
    }
}

/// Makes a rename in `dir` durable (a no-op where folders cannot be opened).
fn sync_folder(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// The process id in the name of a temporary of [`atomic_write`]
/// (`.NAME.tmp-PID-N`), or of the older `.NAME.tmpPID`.
fn temporary_owner(file_name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?;
    let (_, tail) = rest.rsplit_once(".tmp")?;
    let pid = tail
        .strip_prefix('-')
        .map_or(tail, |t| t.split_once('-').map_or(t, |(pid, _)| pid));
    pid.parse().ok()
}

/// Whether process `pid` is running (on Linux, through `/proc`; elsewhere
/// only this process counts as running).
fn process_is_running(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc = Path::new("/proc");
    proc.is_dir() && proc.join(pid.to_string()).exists()
}

/// Removes the temporaries that [`atomic_write`] left in `dir` when its
/// process was killed mid-write (their writer is no longer running), and
/// returns their paths. Temporaries of running writers are left alone.
pub fn remove_stale_temporaries(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut removed = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(io_err(dir, e)),
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temporary_owner) else {
            continue;
        };
        if entry.file_type().is_ok_and(|t| t.is_file()) && !process_is_running(pid) {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(|e| io_err(&path, e))?;
            removed.push(path);
        }
    }
    removed.sort();
    Ok(removed)
}
