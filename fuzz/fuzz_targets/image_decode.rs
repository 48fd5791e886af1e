#![no_main]
//! One image file: header check, evaluation decode, random resized crop.
//! See `residual_train::fuzz::image_decode` for the input's layout.

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

/// This process's folder for the files the parser reads.
static SCRATCH: OnceLock<PathBuf> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let scratch = SCRATCH.get_or_init(|| residual_train::fuzz::scratch_dir("image_decode"));
    residual_train::fuzz::image_decode(data, scratch);
});
