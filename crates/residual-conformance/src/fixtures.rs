//! The PyTorch fixtures (`fixtures/torch_ops.safetensors`, written by
//! `scripts/fixtures/make_fixtures.py`; `fixtures/torch_nonfinite.safetensors`,
//! written by `scripts/fixtures/make_nonfinite_fixtures.py`) and comparisons
//! against them.

use crate::assert::assert_close;
use residual_tensor::{Device, Tensor};
use safetensors::SafeTensors;
use std::sync::OnceLock;

/// A committed safetensors file of PyTorch references, parsed on first use
/// (once per test binary). Every tensor in it is float32.
pub(crate) struct FixtureFile {
    /// The file's name, for messages.
    name: &'static str,
    /// Its bytes, included at compile time.
    bytes: &'static [u8],
    /// The parsed file.
    parsed: OnceLock<SafeTensors<'static>>,
}

impl FixtureFile {
    /// A fixture file from its name and bytes.
    const fn new(name: &'static str, bytes: &'static [u8]) -> Self {
        FixtureFile {
            name,
            bytes,
            parsed: OnceLock::new(),
        }
    }

    /// The parsed file.
    fn tensors(&self) -> &SafeTensors<'static> {
        self.parsed.get_or_init(|| {
            SafeTensors::deserialize(self.bytes).unwrap_or_else(|e| {
                panic!("{} is corrupt ({e}): rerun its fixture script", self.name)
            })
        })
    }

    /// Values and shape of tensor `name`.
    pub(crate) fn get(&self, name: &str) -> (Vec<f32>, Vec<usize>) {
        let v = self
            .tensors()
            .tensor(name)
            .unwrap_or_else(|e| panic!("fixture {name} in {}: {e}", self.name));
        let data = v
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        (data, v.shape().to_vec())
    }

    /// Tensor `name` on `dev`.
    pub(crate) fn load(&self, dev: &Device, name: &str) -> Tensor {
        let (v, s) = self.get(name);
        Tensor::from_vec(v, s, dev).unwrap()
    }
}

/// `fixtures/torch_ops.safetensors`, written by `scripts/fixtures/make_fixtures.py`.
static TORCH_OPS: FixtureFile = FixtureFile::new(
    "torch_ops.safetensors",
    include_bytes!("../fixtures/torch_ops.safetensors"),
);

/// `fixtures/torch_nonfinite.safetensors` (inputs holding NaN and +-Inf),
/// written by `scripts/fixtures/make_nonfinite_fixtures.py`.
pub(crate) static TORCH_NONFINITE: FixtureFile = FixtureFile::new(
    "torch_nonfinite.safetensors",
    include_bytes!("../fixtures/torch_nonfinite.safetensors"),
);

/// Forward tolerance (relative to the largest reference magnitude).
pub(crate) const FWD: f32 = 1e-4;
/// Backward tolerance.
pub(crate) const BWD: f32 = 1e-4;

/// Values and shape of fixture tensor `name` (of `torch_ops.safetensors`).
pub fn fixture(name: &str) -> (Vec<f32>, Vec<usize>) {
    TORCH_OPS.get(name)
}

/// Fixture tensor `name` (of `torch_ops.safetensors`) on `dev`.
pub fn load(dev: &Device, name: &str) -> Tensor {
    TORCH_OPS.load(dev, name)
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
