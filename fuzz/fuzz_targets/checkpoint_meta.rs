#![no_main]
//! Checkpoint metadata JSON (this format and the previous one).
//! See `residual_train::fuzz::checkpoint_meta` for the input's layout.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    residual_train::fuzz::checkpoint_meta(data);
});
