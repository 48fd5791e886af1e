//! # residual-conformance
//!
//! The backend conformance suite of `residual`, written once over a
//! [`Device`](residual_tensor::Device) and run by every backend's tests.
//!
//! Every check is a `pub fn(&Device)` that panics with a message on failure,
//! like an `assert!`. [`conformance_tests!`] expands to one `#[test]` per check
//! for a device, so a new backend runs the whole suite with one line in a test
//! file of its crate:
//!
//! ```ignore
//! residual_conformance::conformance_tests!(Some(residual_tensor::Device::cpu()));
//! ```
//!
//! Forward results are checked against PyTorch fixtures
//! (`fixtures/torch_ops.safetensors`, written by
//! `scripts/fixtures/make_fixtures.py`) or host references; backward results
//! against PyTorch's gradients or central finite differences. The `nonfinite`
//! checks feed inputs holding NaN, +Inf and -Inf and compare with PyTorch's
//! outputs (`fixtures/torch_nonfinite.safetensors`, written by
//! `scripts/fixtures/make_nonfinite_fixtures.py`) through
//! [`nonfinite_mismatch`]: NaN and infinities exactly where PyTorch has them.
//!
//! One module per op family holds its checks; `assert` ([`assert_close`],
//! [`assert_close_nonfinite`], [`check_gradients`]), `inputs` and `fixtures`
//! hold what they share.

mod assert;
mod attention;
mod autograd;
mod block;
mod conv;
mod dropout;
mod elementwise;
mod fixtures;
mod half;
mod inputs;
mod layout;
mod matmul;
mod nonfinite;
mod norm;
mod pool;
mod reduce;
mod softmax;

pub use assert::{assert_close, assert_close_nonfinite, check_gradients, nonfinite_mismatch};
pub use attention::*;
pub use autograd::*;
pub use block::*;
pub use conv::*;
pub use dropout::*;
pub use elementwise::*;
pub use fixtures::{fixture, load};
pub use half::*;
pub use inputs::{randn, t};
pub use layout::*;
pub use matmul::*;
pub use nonfinite::*;
pub use norm::*;
pub use pool::*;
pub use reduce::*;
pub use softmax::*;

#[doc(hidden)]
pub use residual_tensor as __residual_tensor;

/// Expands to one `#[test]` per conformance check. The argument is an
/// expression giving `Option<Device>`; with `None` each test reports itself
/// skipped (no adapter: the `SKIPPED: <test>: <reason>` line of
/// `residual_tensor::test_skip`, which `cargo xtask test` counts) and returns.
#[macro_export]
macro_rules! conformance_tests {
    ($device:expr) => {
        $crate::conformance_tests!(@each $device;
            unary_forward, unary_backward, activations_backward, binary_broadcast,
            binary_backward, reductions_forward, reductions_backward, argmax_first_max,
            matmul_forward, matmul_backward, matmul_nt_forward_backward, attention_forward,
            attention_backward, attention_kernels_match_composition, pad_forward_backward, linear_forward_backward, layout_forward, layout_backward,
            conv2d_finite_differences, conv2d_fused_epilogue, conv2d_non_contiguous_input, pool_finite_differences,
            norm_finite_differences, softmax_cross_entropy_finite_differences, dropout_mask,
            residual_add_accumulates, no_grad_and_detach, casts_round_trip, half_gemm_ops, half_conv2d_fused, norms_take_half_inputs,
            activations_keep_half_dtype,
            torch_conv2d, torch_batch_norm_train, torch_batch_norm_eval, torch_group_norm,
            torch_layer_norm, torch_cross_entropy, torch_pooling, torch_activations,
            torch_basic_block, torch_autocast,
            nonfinite_unary_matches_torch, nonfinite_unary_backward_matches_torch,
            nonfinite_binary_matches_torch, nonfinite_reductions_match_torch,
            nonfinite_argmax_matches_torch, nonfinite_matmul_linear_match_torch,
            nonfinite_conv2d_matches_torch, nonfinite_conv2d_fused_relu_matches_torch,
            nonfinite_pooling_matches_torch, nonfinite_norms_match_torch,
            nonfinite_softmax_matches_torch, nonfinite_cross_entropy_matches_torch,
            nonfinite_half_matches_torch
        );
    };
    (@each $device:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let device: Option<$crate::__residual_tensor::Device> = $device;
                match device {
                    Some(dev) => $crate::$name(&dev),
                    None => $crate::__residual_tensor::test_skip::skipped(
                        "no device of this kind on this machine",
                    ),
                }
            }
        )*
    };
}
