//! Host side of each kernel family: checks what the shader cannot, packs the
//! `params` words, allocates the outputs and records the launches.

pub(crate) mod elementwise;
pub(crate) mod gemm;
pub(crate) mod layout;
pub(crate) mod norm;
pub(crate) mod optim;
pub(crate) mod pool;
pub(crate) mod reduce;
pub(crate) mod softmax;

/// A size as a shader word (sizes are bounded by the binding limit, far below 2^32).
pub(crate) fn word(v: usize) -> u32 {
    v as u32
}

/// An f32 parameter as a shader word.
pub(crate) fn bits(v: f32) -> u32 {
    v.to_bits()
}

/// Merges adjacent dimensions that every stride list walks contiguously
/// (`stride[d] == stride[d + 1] * dim[d + 1]` for all lists, or all zero
/// where broadcast), and drops dimensions of size 1. Returns the new dims and
/// one stride list per input list.
pub(crate) fn coalesce(dims: &[usize], strides: &[Vec<usize>]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut out_dims: Vec<usize> = Vec::new();
    let mut out_strides: Vec<Vec<usize>> = vec![Vec::new(); strides.len()];
    for d in 0..dims.len() {
        if dims[d] == 1 {
            continue;
        }
        let mergeable = !out_dims.is_empty()
            && strides.iter().zip(&out_strides).all(|(s, o)| {
                let last = *o.last().unwrap();
                last == s[d] * dims[d]
            });
        if mergeable {
            *out_dims.last_mut().unwrap() *= dims[d];
            for (s, o) in strides.iter().zip(out_strides.iter_mut()) {
                *o.last_mut().unwrap() = s[d];
            }
        } else {
            out_dims.push(dims[d]);
            for (s, o) in strides.iter().zip(out_strides.iter_mut()) {
                o.push(s[d]);
            }
        }
    }
    (out_dims, out_strides)
}

/// Row-major strides of `dims`.
pub(crate) fn contiguous_strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for d in (0..dims.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * dims[d + 1];
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalesce_merges_contiguous_runs_and_keeps_broadcasts() {
        // [2, 3, 4] contiguous -> [24]
        let (d, s) = coalesce(&[2, 3, 4], &[vec![12, 4, 1]]);
        assert_eq!((d, s), (vec![24], vec![vec![1]]));
        // b broadcast over the last dim: [2, 3, 4] with b strides [3, 1, 0]
        let (d, s) = coalesce(&[2, 3, 4], &[vec![12, 4, 1], vec![3, 1, 0]]);
        assert_eq!(d, vec![6, 4]);
        assert_eq!(s, vec![vec![4, 1], vec![1, 0]]);
        // size-1 dims vanish
        let (d, _) = coalesce(&[1, 5, 1], &[vec![5, 1, 1]]);
        assert_eq!(d, vec![5]);
    }
}
