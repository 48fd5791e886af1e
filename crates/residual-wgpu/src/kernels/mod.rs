//! Host side of each kernel family: checks what the shader cannot, fills the
//! shader's parameter struct, allocates the outputs and records the launches
//! through the launch layer ([`crate::launch`]).

pub(crate) mod elementwise;
pub(crate) mod gemm;
pub(crate) mod layout;
pub(crate) mod norm;
pub(crate) mod optim;
pub(crate) mod pool;
pub(crate) mod reduce;
pub(crate) mod softmax;
