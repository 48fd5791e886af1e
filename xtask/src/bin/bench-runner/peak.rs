//! The machine's measured peaks: fp32 (every thread runs independent FMA
//! chains on the widest vectors the CPU has, for a fixed number of
//! iterations) and bf16, on the instruction residual's bf16 GEMM runs here:
//! AMX's `tdpbf16ps` on tiles (16 x 16 x 32 multiply-adds, 16,384 FLOPs)
//! where the CPU has AMX, else AVX512-BF16's `vdpbf16ps` (32 bf16 products
//! summed into 16 f32 lanes, 64 FLOPs).

use std::time::Instant;

/// Independent accumulators per thread: enough to cover FMA latency x ports.
const CHAINS: usize = 12;
const ITERS: usize = 20_000_000;

/// A peak kernel: runs `iters` rounds of FMAs over every chain.
type Kernel = unsafe fn(usize) -> f32;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::CHAINS;
    use std::arch::x86_64::*;

    /// FMAs on 8-lane vectors; returns a value so the work is not optimised away.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2(iters: usize) -> f32 {
        let a = _mm256_set1_ps(0.999_999);
        let b = _mm256_set1_ps(1e-7);
        let mut acc = [_mm256_set1_ps(1.0); CHAINS];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm256_fmadd_ps(*v, a, b);
            }
        }
        let mut s = _mm256_setzero_ps();
        for v in acc {
            s = _mm256_add_ps(s, v);
        }
        let mut out = [0f32; 8];
        // SAFETY: `out` holds exactly 8 f32, the width of one __m256 store.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), s) };
        out.iter().sum()
    }

    /// FMAs on 16-lane vectors.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn avx512(iters: usize) -> f32 {
        let a = _mm512_set1_ps(0.999_999);
        let b = _mm512_set1_ps(1e-7);
        let mut acc = [_mm512_set1_ps(1.0); CHAINS];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm512_fmadd_ps(*v, a, b);
            }
        }
        let mut s = _mm512_setzero_ps();
        for v in acc {
            s = _mm512_add_ps(s, v);
        }
        _mm512_reduce_add_ps(s)
    }

    /// `vdpbf16ps` chains on 512-bit vectors: 32 multiply-adds each.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub unsafe fn avx512_bf16(iters: usize) -> f32 {
        // Pairs of bf16 ones and 1e-7-ish values: the accumulators grow slowly.
        let a = _mm512_set1_epi32(0x3f80_3f80u32 as i32);
        let b = _mm512_set1_epi32(0x3400_3400u32 as i32);
        // SAFETY: __m512i and __m512bh are both 512 bits of plain data.
        let (a, b) = unsafe {
            (
                std::mem::transmute::<__m512i, __m512bh>(a),
                std::mem::transmute::<__m512i, __m512bh>(b),
            )
        };
        let mut acc = [_mm512_set1_ps(1.0); CHAINS];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm512_dpbf16_ps(*v, a, b);
            }
        }
        let mut s = _mm512_setzero_ps();
        for v in acc {
            s = _mm512_add_ps(s, v);
        }
        _mm512_reduce_add_ps(s)
    }

    /// `tdpbf16ps` on AMX tiles: four independent 16 x 16 f32 accumulator
    /// tiles, each instruction 16 x 16 x 32 multiply-adds (16,384 FLOPs),
    /// four per iteration.
    ///
    /// # Safety
    /// The process holds AMX's tile data (residual's bf16 GEMM asked for it:
    /// `residual_tensor::cpu::gemm_bf16::uses_amx()`).
    pub unsafe fn amx_bf16(iters: usize) -> f32 {
        // Palette 1, eight tiles of 16 rows by 64 bytes.
        let mut config = [0u8; 64];
        config[0] = 1;
        for t in 0..8 {
            config[16 + 2 * t] = 64;
            config[48 + t] = 16;
        }
        // SAFETY: the caller holds the tile data; the configuration is valid.
        unsafe {
            std::arch::asm!(
                "ldtilecfg [{cfg}]",
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                "tilezero tmm4",
                "tilezero tmm5",
                "tilezero tmm6",
                "tilezero tmm7",
                "2:",
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tdpbf16ps tmm1, tmm4, tmm7",
                "tdpbf16ps tmm2, tmm5, tmm6",
                "tdpbf16ps tmm3, tmm5, tmm7",
                "dec {n}",
                "jnz 2b",
                "tilerelease",
                cfg = in(reg) config.as_ptr(),
                n = inout(reg) iters.max(1) => _,
                options(nostack),
            );
        }
        0.0
    }

    /// The bf16 kernel of residual's bf16 GEMM here and its FLOPs per
    /// iteration: AMX tiles, else AVX512-BF16 vectors, else none.
    pub fn bf16_kernel() -> Option<(super::Kernel, usize, &'static str)> {
        if residual_tensor::cpu::gemm_bf16::uses_amx() {
            return Some((
                amx_bf16 as super::Kernel,
                4 * 16 * 16 * 32 * 2,
                "tdpbf16ps (AMX tiles)",
            ));
        }
        (is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bf16")).then_some((
            avx512_bf16 as super::Kernel,
            super::CHAINS * 64,
            "vdpbf16ps (AVX512-BF16)",
        ))
    }

    /// (lanes, kernel) of the widest FMA this CPU runs.
    pub fn kernels() -> Vec<(usize, super::Kernel)> {
        let mut k: Vec<(usize, super::Kernel)> = Vec::new();
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            k.push((8, avx2));
        }
        if is_x86_feature_detected!("avx512f") {
            k.push((16, avx512));
        }
        k
    }
}

/// Scalar fallback (other architectures): `f32::mul_add` chains.
fn scalar(iters: usize) -> f32 {
    let mut acc = [1.0f32; CHAINS];
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = v.mul_add(0.999_999, 1e-7);
        }
    }
    acc.iter().sum()
}

/// GFLOP/s of `kernel` on `threads` threads at once, `flops_per_iter` per
/// iteration and thread: best of three timed runs after a warm-up.
fn time_kernel(kernel: Kernel, iters: usize, threads: usize, flops_per_iter: usize) -> f64 {
    let run = || {
        let t0 = Instant::now();
        std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(move || {
                        // SAFETY: only kernels whose CPU features were
                        // detected at run time are passed here.
                        std::hint::black_box(unsafe { kernel(iters) })
                    })
                })
                .collect();
            hs.into_iter().for_each(|h| {
                h.join().expect("peak thread");
            });
        });
        t0.elapsed().as_secs_f64()
    };
    run();
    let secs = (0..3).map(|_| run()).fold(f64::MAX, f64::min);
    (threads * iters * flops_per_iter) as f64 / secs / 1e9
}

/// Measured fp32 peak in GFLOP/s over `threads` threads, and the vector width used.
pub fn measure(threads: usize) -> (f64, usize) {
    #[allow(unused_mut)]
    let mut kernels: Vec<(usize, Kernel)> = vec![(1, |n| scalar(n))];
    #[cfg(target_arch = "x86_64")]
    kernels.extend(x86::kernels());
    let mut best = (0.0, 1);
    for (lanes, k) in kernels {
        let g = time_kernel(k, ITERS / lanes.max(4), threads, CHAINS * lanes * 2);
        if g > best.0 {
            best = (g, lanes);
        }
    }
    best
}

/// Measured bf16 peak in GFLOP/s over `threads` threads, on the instruction
/// residual's bf16 GEMM runs here (named), or `None` where the CPU has no
/// native bf16 products.
pub fn measure_bf16(threads: usize) -> Option<(f64, &'static str)> {
    #[cfg(target_arch = "x86_64")]
    {
        x86::bf16_kernel().map(|(k, flops, name)| {
            // About as many FLOPs per run as the fp32 peak's.
            let iters = (ITERS * CHAINS * 32 / flops).max(1);
            (time_kernel(k, iters, threads, flops), name)
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = threads;
        None
    }
}
