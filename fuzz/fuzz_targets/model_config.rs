#![no_main]
//! A model config file, JSON or TOML, resolved as `--model FILE`.
//! See `residual_train::fuzz::model_config` for the input's layout.

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

/// This process's folder for the files the parser reads.
static SCRATCH: OnceLock<PathBuf> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let scratch = SCRATCH.get_or_init(|| residual_train::fuzz::scratch_dir("model_config"));
    residual_train::fuzz::model_config(data, scratch);
});
