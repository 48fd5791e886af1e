//! Helpers shared by the backends: half-precision GEMMs through f32 kernels,
//! and merging the dimensions of strided operands.

use super::kernels::Backend;
use super::storage::Storage;
use crate::{DType, Error, Result};

/// Runs a GEMM kernel written for f32 on operands of one half-precision
/// dtype: upcasts each operand (exact), calls `f32_kernel` and rounds its
/// result to that dtype once, which is what a half GEMM with f32
/// accumulation computes. f32 operands go straight to `f32_kernel`. Operands
/// of different dtypes are an error naming both.
pub fn half_through_f32(
    be: &dyn Backend,
    op: &'static str,
    operands: &[&Storage],
    f32_kernel: impl FnOnce(&[&Storage]) -> Result<Storage>,
) -> Result<Storage> {
    let dtype = operands.first().map_or(DType::F32, |s| s.dtype());
    if let Some(other) = operands.iter().find(|s| s.dtype() != dtype) {
        return Err(Error::DType {
            op,
            got: other.dtype(),
            expected: format!("{dtype}, the dtype of the first operand"),
        });
    }
    if dtype == DType::F32 {
        return f32_kernel(operands);
    }
    let wide: Vec<Storage> = operands
        .iter()
        .map(|s| widened(be, s))
        .collect::<Result<_>>()?;
    let refs: Vec<&Storage> = wide.iter().collect();
    be.cast(&f32_kernel(&refs)?, dtype)
}

/// `s` as f32: itself when it is f32, else upcast (exact) with the backend's
/// cast. For kernels written for f32 that accept half inputs.
pub fn widened(be: &dyn Backend, s: &Storage) -> Result<Storage> {
    match s.dtype() {
        DType::F32 => Ok(s.clone()),
        _ => be.cast(s, DType::F32),
    }
}

/// Merges adjacent dimensions that every operand walks contiguously (for each
/// operand, `stride[d] == stride[d + 1] * dims[d + 1]`), so that kernels loop
/// over few long rows instead of many short ones (a `[C, Cin, 1, 1]` weight
/// times a `[C, 1, 1, 1]` scale becomes `[C, Cin]`). Returns the merged dims
/// and each operand's merged strides. Shared by the backends: every strided
/// kernel (gather, broadcasting binary ops, reductions) indexes fewer dims.
pub fn coalesce(dims: &[usize], strides: &[&[usize]]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut d: Vec<usize> = Vec::new();
    let mut s: Vec<Vec<usize>> = vec![Vec::new(); strides.len()];
    for i in (0..dims.len()).rev() {
        if dims[i] == 1 && !d.is_empty() {
            continue; // a size-1 dimension never moves any index
        }
        let mergeable =
            !d.is_empty() && strides.iter().zip(&s).all(|(st, ms)| st[i] == ms[0] * d[0]);
        if mergeable {
            d[0] *= dims[i];
        } else {
            d.insert(0, dims[i]);
            for (ms, st) in s.iter_mut().zip(strides) {
                ms.insert(0, st[i]);
            }
        }
    }
    (d, s)
}

#[cfg(test)]
mod tests {
    use super::coalesce;

    #[test]
    fn coalesce_merges_contiguous_runs_and_keeps_broadcasts() {
        // [2, 3, 4] contiguous -> [24]
        let (d, s) = coalesce(&[2, 3, 4], &[&[12, 4, 1]]);
        assert_eq!((d, s), (vec![24], vec![vec![1]]));
        // b broadcast over the last dim: [2, 3, 4] with b strides [3, 1, 0]
        let (d, s) = coalesce(&[2, 3, 4], &[&[12, 4, 1], &[3, 1, 0]]);
        assert_eq!(d, vec![6, 4]);
        assert_eq!(s, vec![vec![4, 1], vec![1, 0]]);
        // size-1 dims vanish
        let (d, _) = coalesce(&[1, 5, 1], &[&[5, 1, 1]]);
        assert_eq!(d, vec![5]);
    }
}
