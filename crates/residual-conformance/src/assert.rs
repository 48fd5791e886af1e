//! The two assertions every check is made of: values close to a reference,
//! and gradients close to central finite differences.

use residual_tensor::{Device, Result, Tensor};

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
        let y = residual_tensor::no_grad(|| f(xs))
            .unwrap()
            .to_vec()
            .unwrap();
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

/// Compares values that may hold NaN and +-Inf with PyTorch's rule of where
/// they appear: NaN exactly where `want` is NaN, +Inf and -Inf exactly where
/// `want` has them, and elsewhere finite values within `tol * max(1, max
/// |finite want|)`. Returns `None` when they match, else the number of
/// mismatched positions and the first one.
pub fn nonfinite_mismatch(got: &[f32], want: &[f32], tol: f32) -> Option<String> {
    if got.len() != want.len() {
        return Some(format!("{} values, expected {}", got.len(), want.len()));
    }
    let scale = want
        .iter()
        .filter(|v| v.is_finite())
        .fold(1.0f32, |m, v| m.max(v.abs()));
    let bad: Vec<usize> = (0..want.len())
        .filter(|&i| !same_class_and_close(got[i], want[i], tol * scale))
        .collect();
    let &first = bad.first()?;
    Some(format!(
        "{} of {} values differ; first at index {first}: got {}, want {} (finite tolerance {:e})",
        bad.len(),
        want.len(),
        got[first],
        want[first],
        tol * scale
    ))
}

/// Whether `got` is NaN where `want` is, the same infinity where `want` is
/// infinite, and finite within `abs_tol` where `want` is finite.
fn same_class_and_close(got: f32, want: f32, abs_tol: f32) -> bool {
    if want.is_nan() {
        got.is_nan()
    } else if want.is_infinite() {
        got == want
    } else {
        got.is_finite() && (got - want).abs() <= abs_tol
    }
}

/// Asserts [`nonfinite_mismatch`] finds nothing, naming the check.
pub fn assert_close_nonfinite(what: &str, got: &[f32], want: &[f32], tol: f32) {
    if let Some(m) = nonfinite_mismatch(got, want, tol) {
        panic!("{what}: {m}");
    }
}
