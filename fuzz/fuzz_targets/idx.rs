#![no_main]
//! IDX (MNIST) image and label files, gzipped or not.
//! See `residual_train::fuzz::idx` for the input's layout.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    residual_train::fuzz::idx(data);
});
