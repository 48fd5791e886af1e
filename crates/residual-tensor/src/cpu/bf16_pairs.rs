//! Words of bf16 pairs, the unit both bf16 GEMMs ([`super::gemm_bf16`] on
//! `vdpbf16ps`, [`super::gemm_amx`] on AMX tiles) pack k in: one u32 word
//! holds `x[.., 2p]` in its low half and `x[.., 2p + 1]` in its high half.

use half::bf16;

/// One u32 word of two bf16 values, `lo` in the low half.
#[inline(always)]
pub(super) fn pair(lo: bf16, hi: bf16) -> u32 {
    lo.to_bits() as u32 | (hi.to_bits() as u32) << 16
}

/// Writes the k pairs of `src` (one row of A or column of B, k contiguous)
/// down a column of a panel: word `p` goes to `dst[p * stride + col]`. An odd
/// last value is paired with zero.
#[inline]
pub(super) fn scatter_pairs(src: &[bf16], dst: &mut [u32], col: usize, stride: usize) {
    let (pairs, odd) = src.as_chunks::<2>();
    for (p, &[lo, hi]) in pairs.iter().enumerate() {
        dst[p * stride + col] = pair(lo, hi);
    }
    if let [last] = odd {
        dst[pairs.len() * stride + col] = pair(*last, bf16::ZERO);
    }
}

/// Interleaves two rows of 32 bf16 values into 32 words of pairs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn interleave_rows(r0: *const bf16, r1: *const bf16, dst: *mut u32) {
    use std::arch::x86_64::*;
    // Output u16 lane i takes lane i / 2 of r0 (even i) or of r1 (odd i,
    // index 32 + i / 2 of the pair of sources); the second half continues at 16.
    const LO: [u16; 32] = {
        let mut t = [0u16; 32];
        let mut i = 0;
        while i < 32 {
            t[i] = (i / 2) as u16 + if i % 2 == 1 { 32 } else { 0 };
            i += 1;
        }
        t
    };
    const HI: [u16; 32] = {
        let mut t = [0u16; 32];
        let mut i = 0;
        while i < 32 {
            t[i] = 16 + (i / 2) as u16 + if i % 2 == 1 { 32 } else { 0 };
            i += 1;
        }
        t
    };
    // SAFETY: the caller passes two rows of 32 values and 32 words of dst.
    unsafe {
        let a = _mm512_loadu_si512(r0 as *const _);
        let b = _mm512_loadu_si512(r1 as *const _);
        let lo = _mm512_permutex2var_epi16(a, _mm512_loadu_si512(LO.as_ptr() as *const _), b);
        let hi = _mm512_permutex2var_epi16(a, _mm512_loadu_si512(HI.as_ptr() as *const _), b);
        _mm512_storeu_si512(dst as *mut _, lo);
        _mm512_storeu_si512(dst.add(16) as *mut _, hi);
    }
}

#[cfg(not(target_arch = "x86_64"))]
pub(super) unsafe fn interleave_rows(_: *const bf16, _: *const bf16, _: *mut u32) {
    unreachable!("gemm_bf16 runs only where available() holds")
}

/// Whether `/proc/cpuinfo`'s text lists `flag` among a CPU's flags.
#[cfg(test)]
pub(super) fn cpuinfo_lists(cpuinfo: &str, flag: &str) -> bool {
    cpuinfo.lines().any(|l| {
        l.split_once(':').is_some_and(|(key, flags)| {
            key.trim() == "flags" && flags.split_whitespace().any(|f| f == flag)
        })
    })
}
