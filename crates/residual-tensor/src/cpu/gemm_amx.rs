//! The bf16 GEMM on AMX (Intel's Advanced Matrix Extensions, Sapphire
//! Rapids and later): `c[m, n] = op(a)[m, k] @ op(b)[k, n] + beta * c` with
//! bf16 operands and an f32 result, for [`super::gemm_bf16`] to dispatch to.
//! One `tdpbf16ps` multiplies a 16 x 32 bf16 tile of A by a 32 x 16 tile of
//! B into a 16 x 16 f32 tile: 8,192 multiply-adds, where AVX-512's
//! `vdpbf16ps` does 32 (and on these CPUs runs on one port where f32 FMAs
//! run on two, so without AMX the bf16 GEMM is slower than the f32 one).
//!
//! Blocking as in [`super::gemm_bf16`] (one block of C per rayon thread,
//! `NC` columns by `KC` of k of B packed, then `MC` rows of A), with the
//! layouts the tile loads read, k in pairs as the instruction takes them
//! (one u32 word holds `x[.., 2p]` in its low half and `x[.., 2p + 1]` in
//! its high half), k padded with zeros to whole tiles (16 pairs):
//! - A, `[MC rows][kp16 words]`: a row's pairs contiguous (a tile row);
//! - B, `NR`-column panels `[kp16 pairs][NR words]` (a tile row is a pair of
//!   16 columns, so a panel holds two tiles side by side).
//!
//! The micro-kernel keeps a 32 x 32 block of C in four tiles (`tmm0..3`),
//! loads two tiles of A (`tmm4, 5`) and two of B (`tmm6, 7`) per 32 of k,
//! then stores the block and adds it into C with `beta`. The instruction
//! rounds to nearest even and flushes denormals, as `vdpbf16ps` does.
//!
//! Linux hands AMX's tile data to a process only when asked
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`), which
//! [`available`] does once.

use super::bf16_pairs::{interleave_rows, pair, scatter_pairs};
use super::gemm::MatRef;
use super::spare::Spare;
use half::bf16;

/// Rows and columns of C per micro-tile (two tiles each way).
const MR: usize = 32;
/// Columns per packed B panel (two tiles of 16).
const NR: usize = 32;
/// Pairs of k per tile (32 bf16 values: a tile row of 64 bytes).
const TILE_PAIRS: usize = 16;
/// Inner size per packed block (a multiple of `2 * TILE_PAIRS`).
const KC: usize = 512;
/// Rows of A per packed block (a multiple of `MR`).
const MC: usize = 96;
/// Columns of B per packed block (a multiple of `NR`).
const NC: usize = 512;

// The packing and the micro-kernel rely on these.
const _: () = assert!(MR == 32 && NR == 32 && KC.is_multiple_of(2 * TILE_PAIRS));
const _: () = assert!(MC.is_multiple_of(MR) && NC.is_multiple_of(NR));

/// Whether this CPU and kernel run the AMX path: the CPU reports AMX-TILE
/// and AMX-BF16, and Linux granted this process the tile data (asked once).
pub(super) fn available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| cpu_has_amx_bf16() && request_tile_data())
}

/// Whether the kernel's `/proc/cpuinfo` lists AMX-TILE and AMX-BF16: a
/// second look, independent of [`available`], for the tests of this path.
#[cfg(test)]
pub(super) fn cpu_reports_amx_bf16() -> bool {
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|text| {
        ["amx_tile", "amx_bf16"]
            .iter()
            .all(|f| super::bf16_pairs::cpuinfo_lists(&text, f))
    })
}

/// CPUID leaf 7: AMX-BF16 (EDX bit 22) and AMX-TILE (bit 24).
#[cfg(target_arch = "x86_64")]
fn cpu_has_amx_bf16() -> bool {
    use std::arch::x86_64::__cpuid_count;
    // Leaf 7 is read only where the CPU implements it.
    let max_leaf = __cpuid_count(0, 0).eax;
    let edx = if max_leaf >= 7 {
        __cpuid_count(7, 0).edx
    } else {
        0
    };
    edx & (1 << 22) != 0 && edx & (1 << 24) != 0
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_has_amx_bf16() -> bool {
    false
}

/// Asks Linux for permission to use AMX's tile data in this process
/// (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`): whether it was
/// granted. Other systems: no.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn request_tile_data() -> bool {
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    let ret: i64;
    // SAFETY: the arch_prctl system call with these arguments only changes
    // which register state the kernel saves for this process.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") SYS_ARCH_PRCTL => ret,
            in("rdi") ARCH_REQ_XCOMP_PERM,
            in("rsi") XFEATURE_XTILEDATA,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret == 0
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn request_tile_data() -> bool {
    false
}

/// The tile configuration every block runs with: palette 1, eight tiles of
/// 16 rows by 64 bytes (C: 16 x 16 f32; A: 16 rows x 16 pairs; B: 16 pairs x
/// 16 columns).
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

impl TileConfig {
    fn all_16_by_64() -> Self {
        let mut c = [0u8; 64];
        c[0] = 1;
        for t in 0..8 {
            c[16 + 2 * t] = 64;
            c[48 + t] = 16;
        }
        TileConfig(c)
    }
}

/// The blocked product for rows `r0 .. r0 + rows` and columns `c0 .. c0 +
/// cols` of C.
///
/// # Safety
/// [`available`] holds; `c` points to the `m x n` result; no other thread
/// writes this block; the operands hold their shapes.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn block(
    m: usize,
    k: usize,
    n: usize,
    a: MatRef<bf16>,
    b: MatRef<bf16>,
    beta: f32,
    c: *mut f32,
    (r0, rows): (usize, usize),
    (c0, cols): (usize, usize),
) {
    let kp_max = KC / 2;
    let (mut apack, mut bpack) = (u32::take(MC * kp_max), u32::take(NC * kp_max));
    let config = TileConfig::all_16_by_64();
    // SAFETY: `available` granted the tile data; the configuration is valid.
    unsafe { std::arch::asm!("ldtilecfg [{}]", in(reg) config.0.as_ptr(), options(nostack)) };
    {
        let (apack, bpack) = (&mut apack[..], &mut bpack[..]);
        let mut out = Block([0f32; MR * NR]);
        for jc in (c0..c0 + cols).step_by(NC) {
            let nc = NC.min(c0 + cols - jc);
            for pc in (0..k).step_by(KC) {
                let kc = KC.min(k - pc);
                let kp = kc.div_ceil(2).next_multiple_of(TILE_PAIRS);
                pack_b(b, k, n, (pc, kc), (jc, nc), kp, bpack);
                // The first k block applies beta; the others add to it.
                let beta_k = if pc == 0 { beta } else { 1.0 };
                for ic in (r0..r0 + rows).step_by(MC) {
                    let mc = MC.min(r0 + rows - ic);
                    pack_a(a, m, k, (ic, mc), (pc, kc), kp, apack);
                    for jr in (0..nc).step_by(NR) {
                        let bp = &bpack[jr / NR * kp * NR..][..kp * NR];
                        for ir in (0..mc).step_by(MR) {
                            let ap = &apack[ir * kp..][..MR * kp];
                            let (mr, nr) = (MR.min(mc - ir), NR.min(nc - jr));
                            let steps = kp / TILE_PAIRS;
                            if mr == MR && nr == NR && (beta_k == 0.0 || beta_k == 1.0) {
                                // A whole tile of C: the tiles start from C
                                // (beta 1) or zero and are stored into C.
                                // SAFETY: the panels hold MR rows / NR
                                // columns of kp pairs; tiles are configured;
                                // the 32 x 32 block lies inside this block of C.
                                unsafe {
                                    let c = c.add((ic + ir) * n + jc + jr);
                                    tile_product(steps, ap, kp, bp, (c, n), beta_k == 1.0);
                                }
                                continue;
                            }
                            // A partial tile (or another beta) goes through
                            // the 32 x 32 `out`; with beta 1 it starts from
                            // C's block there, so that every element of C
                            // sums in the same order whatever the tile's
                            // place (and so whatever the thread count).
                            let row_of_c = |i: usize| {
                                // SAFETY: row i of the tile lies inside this
                                // block of C, nr elements long.
                                unsafe {
                                    std::slice::from_raw_parts_mut(
                                        c.add((ic + ir + i) * n + jc + jr),
                                        nr,
                                    )
                                }
                            };
                            let accumulate = beta_k == 1.0;
                            if accumulate {
                                for (i, row) in out.0.chunks_exact_mut(NR).take(mr).enumerate() {
                                    row[..nr].copy_from_slice(row_of_c(i));
                                }
                            }
                            // SAFETY: as above, into the 32 x 32 `out`.
                            unsafe {
                                tile_product(
                                    steps,
                                    ap,
                                    kp,
                                    bp,
                                    (out.0.as_mut_ptr(), NR),
                                    accumulate,
                                )
                            };
                            let beta_left = if accumulate { 0.0 } else { beta_k };
                            for (i, row) in out.0.chunks_exact(NR).take(mr).enumerate() {
                                add_scaled(row_of_c(i), &row[..nr], beta_left);
                            }
                        }
                    }
                }
            }
        }
    }
    // SAFETY: returns the tiles to their initial state.
    unsafe { std::arch::asm!("tilerelease", options(nostack)) };
    u32::give(apack);
    u32::give(bpack);
}

/// A 32 x 32 block of f32, as the micro-kernel stores it.
#[repr(C, align(64))]
struct Block([f32; MR * NR]);

/// `dst = beta * dst + src` (`beta == 0`: `dst` is only written).
#[inline]
fn add_scaled(dst: &mut [f32], src: &[f32], beta: f32) {
    if beta == 0.0 {
        dst.copy_from_slice(src);
    } else if beta == 1.0 {
        dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
    } else {
        dst.iter_mut()
            .zip(src)
            .for_each(|(d, s)| *d = beta * *d + s);
    }
}

/// `c[32, 32] = (c if accumulate, else 0) + a[32 rows, steps * 16 pairs] @
/// b[steps * 16 pairs, 32]`: `a` rows at a stride of `lda` words, `b` a
/// panel of `NR` words per pair, `c` rows at a stride of `ldc` f32 (`c`,
/// `ldc`). With `accumulate`, the f32 tiles start from `c` and add the
/// products to it in their own order.
///
/// # Safety
/// Tiles are configured ([`TileConfig::all_16_by_64`]); `a` holds `MR`
/// rows of `lda >= steps * 16` words, `b` `steps * 16` pairs of `NR` words;
/// `steps >= 1`; `c` points at 32 rows of 32 f32 at a stride of `ldc`, which
/// no other thread reads or writes.
unsafe fn tile_product(
    steps: usize,
    a: &[u32],
    lda: usize,
    b: &[u32],
    (c, ldc): (*mut f32, usize),
    accumulate: bool,
) {
    assert!(
        steps >= 1
            && lda >= steps * TILE_PAIRS
            && a.len() >= MR * lda
            && b.len() >= steps * TILE_PAIRS * NR,
        "gemm_amx: the panels do not hold the tiles"
    );
    // SAFETY: the loads read 16 rows of 64 bytes at the given strides, all
    // inside the panels (and, accumulating, of c); the stores write 32 rows
    // of 128 bytes into c.
    unsafe {
        std::arch::asm!(
            "test {acc}, {acc}",
            "jz 3f",
            "tileloadd tmm0, [{c0} + {ldc}*1]",
            "tileloadd tmm1, [{c0} + {ldc}*1 + 64]",
            "tileloadd tmm2, [{c1} + {ldc}*1]",
            "tileloadd tmm3, [{c1} + {ldc}*1 + 64]",
            "jmp 2f",
            "3:",
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            "2:",
            "tileloadd tmm4, [{a0} + {lda}*1]",
            "tileloadd tmm5, [{a1} + {lda}*1]",
            "tileloadd tmm6, [{b} + {ldb}*1]",
            "tileloadd tmm7, [{b} + {ldb}*1 + 64]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            "add {a0}, 64",
            "add {a1}, 64",
            "add {b}, {bstep}",
            "dec {steps}",
            "jnz 2b",
            "tilestored [{c0} + {ldc}*1], tmm0",
            "tilestored [{c0} + {ldc}*1 + 64], tmm1",
            "tilestored [{c1} + {ldc}*1], tmm2",
            "tilestored [{c1} + {ldc}*1 + 64], tmm3",
            a0 = inout(reg) a.as_ptr() => _,
            a1 = inout(reg) a.as_ptr().add(16 * lda) => _,
            b = inout(reg) b.as_ptr() => _,
            steps = inout(reg) steps => _,
            lda = in(reg) lda * 4,
            ldb = in(reg) NR * 4,
            bstep = in(reg) TILE_PAIRS * NR * 4,
            acc = in(reg) accumulate as usize,
            c0 = in(reg) c,
            c1 = in(reg) c.add(16 * ldc),
            ldc = in(reg) ldc * 4,
            options(nostack),
        );
    }
}

/// Pair `p` of a line of `kc` values read with `at(k)`: values past `kc` are
/// zero (a whole word past the line, or the odd last value's partner).
#[inline(always)]
fn pair_at(at: impl Fn(usize) -> bf16, p: usize, kc: usize) -> u32 {
    let (e, o) = (2 * p, 2 * p + 1);
    match (e < kc, o < kc) {
        (true, true) => pair(at(e), at(o)),
        (true, false) => pair(at(e), bf16::ZERO),
        _ => 0,
    }
}

/// Packs rows `i0 .. i0 + mc` and k `k0 .. k0 + kc` of `op(a)` (`[m, k]`)
/// as `[MR-multiple rows][kp words]`, rows and pairs past the data zero.
fn pack_a(
    a: MatRef<bf16>,
    m: usize,
    k: usize,
    (i0, mc): (usize, usize),
    (k0, kc): (usize, usize),
    kp: usize,
    out: &mut [u32],
) {
    let padded = mc.next_multiple_of(MR);
    let out = &mut out[..padded * kp];
    for (i, row) in out.chunks_exact_mut(kp).enumerate() {
        if i >= mc {
            row.fill(0);
            continue;
        }
        let r = i0 + i;
        if a.trans {
            // Stored [k, m]: row r's values lie a column apart.
            let at = |kk: usize| a.data[(k0 + kk) * m + r];
            for (p, w) in row.iter_mut().enumerate() {
                *w = pair_at(at, p, kc);
            }
        } else {
            // Stored [m, k]: the row's values are contiguous, pairs in order.
            scatter_pairs(&a.data[r * k + k0..][..kc], row, 0, 1);
            row[kc.div_ceil(2)..].fill(0);
        }
    }
}

/// Packs k `k0 .. k0 + kc` and columns `j0 .. j0 + nc` of `op(b)` (`[k, n]`)
/// into `NR`-column panels of `kp` pairs, columns and pairs past the data
/// zero.
fn pack_b(
    b: MatRef<bf16>,
    k: usize,
    n: usize,
    (k0, kc): (usize, usize),
    (j0, nc): (usize, usize),
    kp: usize,
    out: &mut [u32],
) {
    for (pi, panel) in out.chunks_mut(kp * NR).take(nc.div_ceil(NR)).enumerate() {
        let jb = j0 + pi * NR;
        let cols = NR.min(j0 + nc - jb);
        for (p, words) in panel.chunks_exact_mut(NR).enumerate() {
            let (e, o) = (2 * p, 2 * p + 1);
            if e >= kc {
                words.fill(0);
                continue;
            }
            if !b.trans && cols == NR && o < kc {
                let r0 = &b.data[(k0 + e) * n + jb..][..NR];
                let r1 = &b.data[(k0 + o) * n + jb..][..NR];
                // SAFETY: AMX CPUs have AVX-512 (checked with `available`
                // by the caller's gemm); both rows hold NR values, `words`
                // NR words.
                unsafe { interleave_rows(r0.as_ptr(), r1.as_ptr(), words.as_mut_ptr()) };
                continue;
            }
            for (j, w) in words.iter_mut().enumerate() {
                if j >= cols {
                    *w = 0;
                    continue;
                }
                // Stored [k, n], or [n, k] when transposed.
                let at = |kk: usize| match b.trans {
                    false => b.data[(k0 + kk) * n + jb + j],
                    true => b.data[(jb + j) * k + k0 + kk],
                };
                *w = pair_at(at, p, kc);
            }
        }
    }
}
