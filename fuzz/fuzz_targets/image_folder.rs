#![no_main]
//! An ImageFolder of two files: scanning, header checks, every sample read.
//! See `residual_train::fuzz::image_folder` for the input's layout.

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

/// This process's folder for the files the parser reads.
static SCRATCH: OnceLock<PathBuf> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let scratch = SCRATCH.get_or_init(|| residual_train::fuzz::scratch_dir("image_folder"));
    residual_train::fuzz::image_folder(data, scratch);
});
