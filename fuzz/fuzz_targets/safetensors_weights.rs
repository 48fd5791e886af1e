#![no_main]
//! Safetensors weights: loaded into a model, read as named tensors.
//! See `residual_train::fuzz::safetensors_weights` for the input's layout.

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

/// This process's folder for the files the parser reads.
static SCRATCH: OnceLock<PathBuf> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let scratch = SCRATCH.get_or_init(|| residual_train::fuzz::scratch_dir("safetensors_weights"));
    residual_train::fuzz::safetensors_weights(data, scratch);
});
