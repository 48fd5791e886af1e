//! Plain loops compiled for the widest vectors the CPU has.
//!
//! The crate is built for the baseline x86-64 target (SSE2), so a loop the
//! compiler vectorises runs four f32 lanes at a time even on a CPU with
//! AVX-512. [`wide`] runs a closure inside a function compiled with AVX-512
//! (or AVX2) enabled, chosen at run time: the closure is inlined there and its
//! loops are vectorised 16 (or 8) lanes wide. The arithmetic is the same
//! instruction for instruction, lane for lane (Rust never contracts a
//! multiply and an add into an FMA on its own), so the results are bit for
//! bit those of the baseline build; only the speed changes.
//!
//! The closure must be marked `#[inline(always)]` (`wide(#[inline(always)]
//! || ...)`), and so must any closure its loop calls that is not small.
//! Without it, a closure larger than the inliner's threshold (it is called
//! from three functions, one per width) stays out of line, compiled for the
//! baseline, and its loop runs four lanes wide on every CPU, silently: the
//! norm statistics, GELU's derivative and the broadcast rows did.

use std::sync::OnceLock;

/// The vector width a [`wide`] call compiles for on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Width {
    /// AVX-512 F + BW + VL: 16 f32 lanes.
    Avx512,
    /// AVX2: 8 f32 lanes.
    Avx2,
    /// The baseline build: SSE2.
    Baseline,
}

/// What this CPU runs [`wide`] closures with (detected once).
pub(crate) fn width() -> Width {
    static WIDTH: OnceLock<Width> = OnceLock::new();
    *WIDTH.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                return Width::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Width::Avx2;
            }
        }
        Width::Baseline
    })
}

/// Runs `f` compiled for the widest vectors this CPU has (see the module
/// doc). `f` should be an `#[inline(always)]` closure, a loop over slices
/// with no calls it cannot inline.
#[inline(always)]
pub(crate) fn wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    match width() {
        // SAFETY: the features each function enables were detected above.
        Width::Avx512 => return unsafe { with_avx512(f) },
        Width::Avx2 => return unsafe { with_avx2(f) },
        Width::Baseline => {}
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn with_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(test)]
mod tests {
    use super::super::storage::bf16_bits;
    use super::*;

    /// The same loop gives the same bits through `wide` as in the baseline
    /// build, rounding to bf16 included (ties, NaN, infinities, subnormals).
    #[test]
    fn wide_loops_give_the_baseline_bits() {
        let mut x: Vec<f32> = crate::rng::normal(5, 4099, 0.0, 3.0);
        x.extend([
            f32::NAN,
            -f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1e-40,
            -1e-40,
            f32::from_bits(0x3f80_8000), // a tie to even (down)
            f32::from_bits(0x3f81_8000), // a tie to even (up)
            f32::MAX,
        ]);
        // The loops are written out inside the closures, so that they are
        // compiled (and vectorised) within the wide function.
        let round_wide: Vec<u16> = wide(
            #[inline(always)]
            || x.iter().map(|&a| bf16_bits(a)).collect(),
        );
        let round_base: Vec<u16> = x.iter().map(|&a| bf16_bits(a)).collect();
        assert_eq!(round_wide, round_base);
        let scaled_wide: Vec<u32> = wide(
            #[inline(always)]
            || x.iter().map(|&a| (a * 1.7 + 0.3).to_bits()).collect(),
        );
        let scaled_base: Vec<u32> = x.iter().map(|&a| (a * 1.7 + 0.3).to_bits()).collect();
        assert_eq!(scaled_wide, scaled_base);
        let want: Vec<u16> = x
            .iter()
            .map(|&a| half::bf16::from_f32(a).to_bits())
            .collect();
        assert_eq!(round_wide, want, "half's rounding");
    }
}
