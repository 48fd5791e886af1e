//! The backend conformance suite, written once over a [`Device`].
//!
//! Every check is a `pub fn(&Device)` that panics with a message on failure,
//! like an `assert!`. [`conformance_tests!`](crate::conformance_tests) expands to
//! one `#[test]` per check for a device, so a new backend runs the whole suite
//! with one line:
//!
//! ```ignore
//! residual_tensor::conformance_tests!(Some(residual_tensor::Device::cpu()));
//! ```
//!
//! Forward results are checked against PyTorch fixtures
//! (`scripts/fixtures/make_fixtures.py`) or host references; backward results
//! against PyTorch's gradients or central finite differences.

mod checks;
mod torch;

pub use checks::*;
pub use torch::*;

use crate::{Device, Result, Tensor};

/// Asserts `max |got - want| <= tol * max(1, max |want|)`, naming the check.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: {} values, expected {}",
        got.len(),
        want.len()
    );
    let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let (mut worst, mut at) = (0.0f32, 0);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let d = (g - w).abs();
        if d > worst || d.is_nan() {
            worst = d;
            at = i;
            if d.is_nan() {
                break;
            }
        }
    }
    assert!(
        worst <= tol * scale,
        "{what}: max |diff| {worst:e} at index {at} (got {}, want {}) exceeds {tol:e} * {scale}",
        got.get(at).copied().unwrap_or(f32::NAN),
        want.get(at).copied().unwrap_or(f32::NAN)
    );
}

/// Checks the gradients of `f` at `inputs` against central finite differences
/// of `sum(f(inputs) * r)` for a fixed random `r`. At most `max_coords`
/// coordinates per input are probed (spread over the tensor) to bound the cost
/// on slow backends. `h` is the step; inputs must be away from kinks by more.
pub fn check_gradients(
    what: &str,
    dev: &Device,
    inputs: Vec<Tensor>,
    h: f32,
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
) {
    let leaves: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.to_device(dev).unwrap().requires_grad_())
        .collect();
    let y = f(&leaves).unwrap_or_else(|e| panic!("{what}: forward failed: {e}"));
    let r = Tensor::randn(y.shape().clone(), 0.0, 1.0, 7, dev).unwrap();
    let r_host = r.to_vec().unwrap();
    let loss = y.mul(&r).unwrap().sum_all().unwrap();
    let grads = loss
        .backward()
        .unwrap_or_else(|e| panic!("{what}: backward failed: {e}"));
    let objective = |xs: &[Tensor]| -> f64 {
        let y = crate::no_grad(|| f(xs)).unwrap().to_vec().unwrap();
        y.iter()
            .zip(&r_host)
            .map(|(&a, &b)| a as f64 * b as f64)
            .sum()
    };
    for (k, x) in leaves.iter().enumerate() {
        let analytic = grads
            .get(x)
            .unwrap_or_else(|| panic!("{what}: no gradient for input {k}"))
            .to_vec()
            .unwrap();
        let base = x.to_vec().unwrap();
        let n = base.len();
        let probes: Vec<usize> = if n <= 24 {
            (0..n).collect()
        } else {
            (0..24)
                .map(|i| i * n / 24 + (i % 3))
                .map(|i| i.min(n - 1))
                .collect()
        };
        for &i in &probes {
            let eval = |delta: f32| {
                let mut v = base.clone();
                v[i] += delta;
                let mut xs: Vec<Tensor> = leaves.iter().map(|t| t.detach()).collect();
                xs[k] = Tensor::from_vec(v, x.shape().clone(), dev).unwrap();
                objective(&xs)
            };
            let numeric = ((eval(h) - eval(-h)) / (2.0 * h as f64)) as f32;
            let a = analytic[i];
            let tol = 2e-3 + 1e-2 * numeric.abs().max(a.abs());
            assert!(
                (a - numeric).abs() <= tol,
                "{what}: d/d input{k}[{i}]: analytic {a} vs finite difference {numeric} (tol {tol})"
            );
        }
    }
}

/// A tensor on `dev` from values and a shape.
pub fn t(dev: &Device, v: Vec<f32>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(v, shape.to_vec(), dev).unwrap()
}

/// Seeded normal values, deterministic per `seed`.
pub fn randn(dev: &Device, shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape.to_vec(), 0.0, 1.0, seed, dev).unwrap()
}

/// Expands to one `#[test]` per conformance check. The argument is an
/// expression giving `Option<Device>`; with `None` each test prints why it was
/// skipped (no adapter) and passes.
#[macro_export]
macro_rules! conformance_tests {
    ($device:expr) => {
        $crate::conformance_tests!(@each $device;
            unary_forward, unary_backward, activations_backward, binary_broadcast,
            binary_backward, reductions_forward, reductions_backward, argmax_first_max,
            matmul_forward, matmul_backward, linear_forward_backward, layout_forward, layout_backward,
            conv2d_finite_differences, conv2d_fused_epilogue, conv2d_non_contiguous_input, pool_finite_differences,
            norm_finite_differences, softmax_cross_entropy_finite_differences, dropout_mask,
            residual_add_accumulates, no_grad_and_detach, casts_round_trip, half_gemm_ops, batch_norm_half_input,
            torch_conv2d, torch_batch_norm_train, torch_batch_norm_eval, torch_group_norm,
            torch_layer_norm, torch_cross_entropy, torch_pooling, torch_activations,
            torch_basic_block, torch_autocast
        );
    };
    (@each $device:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let device: Option<$crate::Device> = $device;
                match device {
                    Some(dev) => $crate::conformance::$name(&dev),
                    None => eprintln!("SKIPPED {}: no device of this kind on this machine", stringify!($name)),
                }
            }
        )*
    };
}
