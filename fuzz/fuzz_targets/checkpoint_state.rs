#![no_main]
//! A training-state file: metadata, tensors, restore into a model and optimizer.
//! See `residual_train::fuzz::checkpoint_state` for the input's layout.

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

/// This process's folder for the files the parser reads.
static SCRATCH: OnceLock<PathBuf> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let scratch = SCRATCH.get_or_init(|| residual_train::fuzz::scratch_dir("checkpoint_state"));
    residual_train::fuzz::checkpoint_state(data, scratch);
});
