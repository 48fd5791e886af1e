//! Differentiable ops on [`crate::Tensor`]: each validates its arguments, calls
//! one backend kernel for its forward and records its backward rule beside it.

mod attention;
mod conv;
mod dropout;
mod elementwise;
mod gemm_operands;
mod layout;
mod loss;
mod matmul;
mod norm;
mod pad;
mod pool;
mod reduce;
mod sync_norm;

pub use norm::BatchNormOutput;
pub use sync_norm::ReplicaSum;
