//! What the CPU's GEMMs share: the operand view, the split of C into one
//! block per thread, and products with nothing to multiply. Its own module
//! so that the GEMM kernels and the entry point (`gemm.rs`) import it, not
//! each other.

use rayon::prelude::*;

/// A dense row-major matrix operand, possibly read transposed.
#[derive(Clone, Copy)]
pub struct MatRef<'a, T = f32> {
    /// The elements, row-major as stored.
    pub data: &'a [T],
    /// Read the stored matrix transposed.
    pub trans: bool,
}

/// Products below this many multiply-adds run on one thread.
const PARALLEL_MIN_MACS: usize = 1 << 18;

/// Finishes a product with nothing to multiply: C is empty (`m` or `n` is
/// 0), or `k` is 0 and C becomes `beta * C` (0 when `beta` is 0, whatever C
/// held, as in BLAS). Returns whether the product was one of these.
fn degenerate(m: usize, k: usize, n: usize, beta: f32, c: &mut [f32]) -> bool {
    if m == 0 || n == 0 {
        return true;
    }
    if k > 0 {
        return false;
    }
    c[..m * n]
        .iter_mut()
        .for_each(|v| *v = if beta == 0.0 { 0.0 } else { *v * beta });
    true
}

/// Calls `block(r0, rows, c0, cols)` for blocks of an `m x n` product with
/// inner size `k` that together cover C: one per rayon thread, along the
/// longer side of C, or the whole of C when the product is small. Blocks
/// start at multiples of `col_step` columns, or of `row_step` rows.
fn for_each_block(
    (m, k, n): (usize, usize, usize),
    (row_step, col_step): (usize, usize),
    block: impl Fn(usize, usize, usize, usize) + Sync,
) {
    let threads = rayon::current_num_threads();
    if threads <= 1 || m * n * k < PARALLEL_MIN_MACS {
        block(0, m, 0, n);
        return;
    }
    let long = m.max(n);
    let align = if n >= m { col_step } else { row_step };
    let step = long.div_ceil(threads).next_multiple_of(align).min(long);
    let parts = long.div_ceil(step);
    (0..parts).into_par_iter().for_each(|j| {
        let (start, len) = (j * step, step.min(long - j * step));
        if n >= m {
            block(0, m, start, len);
        } else {
            block(start, len, 0, n);
        }
    });
}

/// The driver of a blocked GEMM: checks that the operands hold `m x k`,
/// `k x n` and `m x n` elements (panicking with `what` otherwise), finishes a
/// product with nothing to multiply ([`degenerate`]), and otherwise calls
/// `block(c, (r0, rows), (c0, cols))` for the blocks of [`for_each_block`],
/// on rayon's threads, `c` pointing at C's first element; a block split
/// along the rows starts at a multiple of `row_step` rows, one split along
/// the columns at a multiple of `col_step` columns. Each call may
/// write rows `r0 .. r0 + rows` and columns `c0 .. c0 + cols` of C: blocks
/// of concurrent calls are disjoint.
#[allow(clippy::too_many_arguments)]
pub(crate) fn for_each_block_of_c<A, B>(
    what: &str,
    (m, k, n): (usize, usize, usize),
    steps: (usize, usize),
    a: &[A],
    b: &[B],
    beta: f32,
    c: &mut [f32],
    block: impl Fn(*mut f32, (usize, usize), (usize, usize)) + Sync,
) {
    assert!(
        a.len() >= m * k && b.len() >= k * n && c.len() >= m * n,
        "{what}: operand too small"
    );
    if degenerate(m, k, n, beta, c) {
        return;
    }
    // The address as an integer so that tasks can share it.
    let pc = c.as_mut_ptr() as usize;
    for_each_block((m, k, n), steps, |r0, rows, c0, cols| {
        block(pc as *mut f32, (r0, rows), (c0, cols))
    });
}
