//! Safetensors weights with PyTorch's names: load (strict or not) and save.
//!
//! A torchvision `state_dict` saved with `safetensors.torch.save_file` loads
//! with no renaming. Loading converts f16 / bf16 / f64 / integer tensors to f32
//! (int64 `num_batches_tracked` included) and strips a `module.` prefix
//! (checkpoints saved from `DataParallel`). Saving writes f32, with
//! `num_batches_tracked` as int64 as PyTorch has it, through a temporary file
//! and a rename, so a crash never leaves a half-written file in place.

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

/// Reads every tensor of a safetensors file as f32 on `dev`, names as stored.
pub fn read_tensors(path: impl AsRef<Path>, dev: &Device) -> Result<BTreeMap<String, Tensor>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
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
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
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
    let bytes = safetensors::serialize(views, None).map_err(|e| Error::Weights(e.to_string()))?;
    atomic_write(path, &bytes)
}

/// Writes `bytes` to `path` through a temporary sibling file and a rename.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io_err(path, "not a file path"))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(path, e));
    }
    Ok(())
}
