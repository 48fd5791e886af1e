#![no_main]
//! CIFAR-10 / CIFAR-100 binary records.
//! See `residual_train::fuzz::cifar` for the input's layout.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    residual_train::fuzz::cifar(data);
});
