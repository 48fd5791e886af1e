//! The operands of the GEMM ops (`conv2d`, `matmul`, `linear`): the dtype
//! they compute in and the casts to it, under the autocast rules.

use crate::{DType, Error, Result, Tensor};

impl Tensor {
    /// The dtype a GEMM op (conv2d, matmul, linear) computes in for operands
    /// `self` and `other`: the autocast dtype under autocast; otherwise their
    /// common dtype, and an error when they are on different devices or of
    /// different dtypes.
    pub(crate) fn gemm_dtype(&self, op: &'static str, other: &Tensor) -> Result<DType> {
        self.expect_same_device(op, other)?;
        if let Some(dtype) = crate::autocast::autocast_dtype() {
            return Ok(dtype);
        }
        if self.dtype() != other.dtype() {
            return Err(Error::DType {
                op,
                got: other.dtype(),
                expected: format!(
                    "{}, the input's dtype (cast one operand, or compute under autocast)",
                    self.dtype()
                ),
            });
        }
        Ok(self.dtype())
    }

    /// The operands of a GEMM op as it computes on them, both of
    /// [`Tensor::gemm_dtype`] (differentiable casts where needed).
    pub(crate) fn gemm_operands(
        &self,
        op: &'static str,
        other: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let dtype = self.gemm_dtype(op, other)?;
        Ok((
            crate::autocast::cast_for_gemm(self, dtype)?,
            crate::autocast::cast_for_gemm(other, dtype)?,
        ))
    }
}
