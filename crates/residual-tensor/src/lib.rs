//! # residual-tensor
//!
//! The tensor core of `residual`: [`Shape`], [`DType`], [`Device`], [`Tensor`],
//! define-by-run autograd, and the CPU backend (ndarray + rayon, GEMM through
//! `matrixmultiply`).
//!
//! ```
//! use residual_tensor::{Device, Tensor};
//! let dev = Device::cpu();
//! let x = Tensor::from_vec(vec![1.0, 2.0, 3.0], [3], &dev)?.requires_grad_();
//! let y = x.mul(&x)?.sum_all()?; // sum(x^2)
//! let grads = y.backward()?;
//! assert_eq!(grads.get(&x).unwrap().to_vec()?, vec![2.0, 4.0, 6.0]);
//! # Ok::<(), residual_tensor::Error>(())
//! ```
//!
//! Every tensor's storage is dense row-major; views (permute, narrow,
//! broadcast) are materialised by one strided-copy kernel, so no kernel ever
//! infers a layout from strides. Ops check shapes, dtypes and devices and
//! return an [`Error`] naming the op and the shapes; they never panic on user input.

pub mod autocast;
pub mod autograd;
pub mod backend;
pub mod cpu;
mod device;
mod dtype;
mod error;
mod grad_mode;
pub mod macs;
mod ops;
pub mod rng;
pub mod saved;
mod shape;
mod tally;
mod tensor;
pub mod test_skip;

pub use autocast::{autocast, autocast_cached, autocast_dtype, AutocastGuard, CastCache};
pub use autograd::{is_grad_enabled, no_grad, Gradients, NoGradGuard, TensorId};
pub use backend::{AdamWHyper, Backend, Conv2dParams, HostData, Pool2dParams, SgdHyper, Storage};
pub use device::Device;
pub use dtype::DType;
pub use error::{Error, Result};
pub use ops::{BatchNormOutput, ReplicaSum};
pub use shape::Shape;
pub use tensor::Tensor;
