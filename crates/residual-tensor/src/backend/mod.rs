//! The [`Backend`] trait: one method per primitive kernel.
//!
//! A backend owns its storage (host vectors for the CPU, buffers for a GPU). The
//! tensor core checks shapes, dtypes and devices before it calls a kernel, so a
//! kernel may assume valid arguments; every storage it receives is dense
//! row-major, and every float kernel reads and writes `f32`, except the GEMM
//! kernels on half operands (mixed precision) and the norms, which read a
//! half input and write its gradient in the input's dtype.
//!
//! The module is split by job: `kernels` holds the trait, `attention` the
//! attention kernels' sizes (`AttentionSpec`), `params` the types
//! its kernels take (ops, geometry, statistics, hyper-parameters), `storage`
//! the storage handle and host data, and `helpers` what backends share
//! (`half_through_f32`, `widened`, `coalesce`). Everything is re-exported
//! here, so `residual_tensor::backend::X` names each item.

mod attention;
mod helpers;
mod kernels;
mod params;
mod storage;

pub use attention::AttentionSpec;
pub use helpers::{coalesce, half_through_f32, widened};
pub use kernels::{fused_conv_through_f32, Backend};
pub use params::{
    AdamWHyper, AxisView, BinaryOp, Conv2dGeometry, Conv2dParams, ConvEpilogue, MatmulSpec,
    NormGrads, NormStats, Pool2dGeometry, Pool2dParams, ReduceOp, RowAffine, SgdHyper, UnaryOp,
};
pub use storage::{BackendStorage, HostData, Storage};
