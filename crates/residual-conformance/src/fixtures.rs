//! The PyTorch fixtures (`fixtures/torch_ops.safetensors`, written by
//! `scripts/fixtures/make_fixtures.py`) and comparisons against them.

use crate::assert::assert_close;
use residual_tensor::{Device, Tensor};
use safetensors::SafeTensors;
use std::sync::OnceLock;

static FIXTURES: &[u8] = include_bytes!("../fixtures/torch_ops.safetensors");

/// Forward tolerance (relative to the largest reference magnitude).
pub(crate) const FWD: f32 = 1e-4;
/// Backward tolerance.
pub(crate) const BWD: f32 = 1e-4;

/// The fixture file, parsed once per test binary.
fn fixtures() -> &'static SafeTensors<'static> {
    static F: OnceLock<SafeTensors<'static>> = OnceLock::new();
    F.get_or_init(|| {
        SafeTensors::deserialize(FIXTURES)
            .expect("torch_ops.safetensors is corrupt: rerun the fixture script")
    })
}

/// Values and shape of fixture tensor `name`.
pub fn fixture(name: &str) -> (Vec<f32>, Vec<usize>) {
    let v = fixtures()
        .tensor(name)
        .unwrap_or_else(|e| panic!("fixture {name}: {e}"));
    let data = v
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (data, v.shape().to_vec())
}

/// Fixture tensor `name` on `dev`.
pub fn load(dev: &Device, name: &str) -> Tensor {
    let (v, s) = fixture(name);
    Tensor::from_vec(v, s, dev).unwrap()
}

/// Asserts that `got` has the shape of fixture `fixture_name` and values
/// within `tol` of it (see [`assert_close`]).
pub(crate) fn check(what: &str, got: &Tensor, fixture_name: &str, tol: f32) {
    let (want, shape) = fixture(fixture_name);
    assert_eq!(got.dims(), shape.as_slice(), "{what}: shape");
    assert_close(what, &got.to_vec().unwrap(), &want, tol);
}

/// Gradients of `sum(y * dy)` for the given leaves.
pub(crate) fn grads_for(y: &Tensor, dy: &Tensor, leaves: &[&Tensor]) -> Vec<Tensor> {
    let g = y.mul(dy).unwrap().sum_all().unwrap().backward().unwrap();
    leaves
        .iter()
        .map(|l| g.get(l).expect("missing gradient").clone())
        .collect()
}
