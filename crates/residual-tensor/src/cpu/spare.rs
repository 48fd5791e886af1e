//! Scratch buffers kept per thread between kernel calls: the convolutions'
//! im2col columns and gathered blocks, the GEMMs' packed panels.
//! Consecutive layers reuse them instead of allocating and zeroing anew.

use half::bf16;

/// Spare buffers kept per thread and element type.
type SpareList<T> = std::cell::RefCell<Vec<Vec<T>>>;

thread_local! {
    static SPARE_F32: SpareList<f32> = const { std::cell::RefCell::new(Vec::new()) };
    static SPARE_BF16: SpareList<bf16> = const { std::cell::RefCell::new(Vec::new()) };
    static SPARE_U32: SpareList<u32> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Element types of scratch buffers that threads keep between calls.
pub(crate) trait Spare: Copy + Default + 'static {
    /// This thread's spare buffers of this type.
    fn spares() -> &'static std::thread::LocalKey<SpareList<Self>>;

    /// A buffer of `len` elements, reused when one is spare. Its contents are
    /// left from earlier use (or zero where it grew): callers overwrite what
    /// they read.
    fn take(len: usize) -> Vec<Self> {
        let mut v = Self::spares()
            .with_borrow_mut(|list| {
                // The smallest spare buffer that fits, else the largest one.
                let fit = (0..list.len())
                    .filter(|&i| list[i].capacity() >= len)
                    .min_by_key(|&i| list[i].capacity());
                let pick = fit.or_else(|| (0..list.len()).max_by_key(|&i| list[i].capacity()));
                pick.map(|i| list.swap_remove(i))
            })
            .unwrap_or_default();
        v.resize(len, Self::default());
        v
    }

    /// Keeps `v` for a later [`Spare::take`] (at most [`MAX_SPARES`] per
    /// thread and type; the smallest goes first).
    fn give(v: Vec<Self>) {
        if v.capacity() == 0 {
            return;
        }
        Self::spares().with_borrow_mut(|list| {
            list.push(v);
            if list.len() > MAX_SPARES {
                let smallest = (0..list.len()).min_by_key(|&i| list[i].capacity());
                if let Some(i) = smallest {
                    list.swap_remove(i);
                }
            }
        });
    }
}

/// Spare buffers kept per thread and element type: a convolution uses at
/// most two, and the GEMM it calls two more (the f32 GEMM's packed panels).
const MAX_SPARES: usize = 4;

impl Spare for f32 {
    fn spares() -> &'static std::thread::LocalKey<SpareList<Self>> {
        &SPARE_F32
    }
}

impl Spare for bf16 {
    fn spares() -> &'static std::thread::LocalKey<SpareList<Self>> {
        &SPARE_BF16
    }
}

impl Spare for u32 {
    fn spares() -> &'static std::thread::LocalKey<SpareList<Self>> {
        &SPARE_U32
    }
}
