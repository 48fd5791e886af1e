//! Helpers the end-to-end test files share: a tiny run (a few 8x8 digits, a
//! two-stage ResNet from a config file) and readers of a run folder.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn residual(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_residual"))
        .args(args)
        .output()
        .expect("run residual")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A tiny run: 32 training and 16 held-out 8x8 digits (IDX files), a
/// two-stage ResNet of width 4 and 8 from a config file.
pub struct Tiny {
    pub dir: tempfile::TempDir,
}

impl Tiny {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("residual-resume-tests-")
            .tempdir()
            .unwrap();
        let data = dir.path().join("digits");
        std::fs::create_dir_all(&data).unwrap();
        write_idx(&data, "train", 32);
        write_idx(&data, "t10k", 16);
        std::fs::write(
            dir.path().join("tiny.toml"),
            "family = \"resnet\"\nblock = \"basic\"\nlayers = [1, 1]\nwidths = [4, 8]\nstem = \"cifar\"\nstem_width = 4\nnum_classes = 10\n",
        )
        .unwrap();
        Tiny { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn data(&self) -> String {
        format!("mnist:{}", self.path("digits").display())
    }

    /// `residual train` on the tiny data and model into `run`, batch 4, and `extra`.
    pub fn train_args(&self, run: &str, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "train",
            "--data",
            &self.data(),
            "--model",
            self.path("tiny.toml").to_str().unwrap(),
            "--batch-size",
            "4",
            "--out",
            self.path(run).to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    pub fn train(&self, run: &str, extra: &[&str]) -> Output {
        let args = self.train_args(run, extra);
        residual(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    pub fn resume(&self, run: &str, extra: &[&str]) -> Output {
        let mut args = vec!["train", "--resume"];
        let dir = self.path(run);
        args.push(dir.to_str().unwrap());
        args.extend(extra);
        residual(&args)
    }
}

/// Writes an IDX3 file of `n` 8x8 images (a bright pixel whose place depends
/// on the label) and its IDX1 labels.
pub fn write_idx(dir: &Path, prefix: &str, n: u32) {
    let mut img = Vec::new();
    for x in [0x0803u32, n, 8, 8] {
        img.extend(x.to_be_bytes());
    }
    for i in 0..n {
        let mut pixels = [0u8; 64];
        pixels[(i % 10) as usize * 6] = 255;
        img.extend(pixels);
    }
    let mut lab = Vec::new();
    for x in [0x0801u32, n] {
        lab.extend(x.to_be_bytes());
    }
    lab.extend((0..n).map(|i| (i % 10) as u8));
    std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), img).unwrap();
    std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), lab).unwrap();
}

/// The records of a run's log.
pub fn log_records(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// The epochs of the log's epoch records, in order.
pub fn epoch_records(run: &Path) -> Vec<u64> {
    log_records(run)
        .iter()
        .filter(|v| v.get("test_acc").is_some())
        .map(|v| v["epoch"].as_u64().unwrap())
        .collect()
}

/// The string metadata of a safetensors file.
pub fn metadata(path: &Path) -> std::collections::HashMap<String, String> {
    let bytes = std::fs::read(path).unwrap();
    let (_, md) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    md.metadata().clone().unwrap_or_default()
}

pub fn epoch_records_or_empty(run: &Path) -> Vec<u64> {
    std::fs::read_to_string(run.join("log.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("test_acc").is_some())
        .filter_map(|v| v["epoch"].as_u64())
        .collect()
}

/// The tensors of a safetensors file: name, shape and bytes.
pub fn tensors(bytes: &[u8]) -> Vec<(String, Vec<usize>, Vec<u8>)> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let mut out: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.shape().to_vec(), v.data().to_vec()))
        .collect();
    out.sort();
    out
}

/// Whether python3 imports `module`.
fn python_imports(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether python3 can import `module` here: in CI the PyPI package `pip`
/// is installed when it is missing, and the module must then import.
pub fn python_module_available(module: &str, pip: &str) -> bool {
    if python_imports(module) {
        return true;
    }
    if residual_tensor::test_skip::in_ci() {
        let installed = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", pip])
            .status();
        assert!(
            installed.is_ok_and(|s| s.success()) && python_imports(module),
            "CI: `pip install {pip}` failed or {module} still does not import"
        );
        return true;
    }
    false
}

/// The TensorBoard event files in a run folder.
pub fn events_files(run: &Path) -> usize {
    std::fs::read_dir(run)
        .unwrap()
        .filter_map(|f| f.ok())
        .filter(|f| {
            f.file_name()
                .to_string_lossy()
                .starts_with("events.out.tfevents")
        })
        .count()
}

/// The step records (one per optimizer step) of a run's log.
pub fn step_record_count(run: &Path) -> usize {
    log_records(run)
        .iter()
        .filter(|r| r.get("step").is_some())
        .count()
}
