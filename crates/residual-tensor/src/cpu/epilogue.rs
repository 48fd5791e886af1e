//! The f32 epilogue an inference convolution applies as it stores its
//! output (the folded batch norm's bias, the residual shortcut, ReLU), so
//! that the output is written once instead of written, read and written
//! again by a separate pass.
//!
//! Per element, in this order: `v + bias[row]`, `+ residual`, then ReLU as
//! the ReLU op computes it (`v < 0 ? 0 : v`, so NaN passes). Each step
//! rounds once, as [`super::elementwise::conv_epilogue`] does, so a fused
//! store gives that pass's bits. An epilogue with nothing to do changes
//! nothing (that pass's `v + 0.0` turned -0 into +0): the output is then the
//! plain convolution's.

use std::mem::MaybeUninit;

/// What a convolution (or the GEMM behind it) applies to each output
/// element as it stores it. Rows are output channels; the residual has the
/// output's shape.
#[derive(Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// Per output channel (per row of the GEMM's C).
    pub bias: Option<&'a [f32]>,
    /// Of the output's shape (the residual shortcut).
    pub residual: Option<&'a [f32]>,
    /// ReLU last.
    pub relu: bool,
}

impl<'a> Epilogue<'a> {
    /// Whether it changes nothing.
    pub fn is_identity(&self) -> bool {
        self.bias.is_none() && self.residual.is_none() && !self.relu
    }

    /// The epilogue of `rows` output rows from `row0`, whose residual
    /// starts at element `at` of this one's: a group's channels of a sample.
    pub fn part(&self, row0: usize, rows: usize, at: usize, len: usize) -> Epilogue<'a> {
        Epilogue {
            bias: self.bias.map(|b| &b[row0..][..rows]),
            residual: self.residual.map(|r| &r[at..][..len]),
            relu: self.relu,
        }
    }

    /// One element: `v` with its row's `bias`, and `residual` the
    /// residual's element at the same place.
    #[inline(always)]
    fn one(&self, v: f32, bias: f32, residual: Option<f32>) -> f32 {
        let mut v = v + bias;
        if let Some(r) = residual {
            v += r;
        }
        if self.relu && v < 0.0 {
            0.0
        } else {
            v
        }
    }

    /// Writes `dst[j] = epi(src[j])` for row `row` of the output, whose
    /// residual row starts at element `at`.
    pub fn row_into(&self, src: &[f32], dst: &mut [MaybeUninit<f32>], row: usize, at: usize) {
        if self.is_identity() {
            for (d, &v) in dst.iter_mut().zip(src) {
                d.write(v);
            }
            return;
        }
        let b = self.bias.map_or(0.0, |b| b[row]);
        match self.residual {
            Some(r) => {
                let r = &r[at..][..dst.len()];
                for ((d, &v), &r) in dst.iter_mut().zip(src).zip(r) {
                    d.write(self.one(v, b, Some(r)));
                }
            }
            None => {
                for (d, &v) in dst.iter_mut().zip(src) {
                    d.write(self.one(v, b, None));
                }
            }
        }
    }

    /// Applies it in place to `c: [rows, n]`, its row `i` being row `i` of
    /// this epilogue (and of its residual, at a row stride of `n`).
    pub fn apply(&self, c: &mut [f32], n: usize) {
        if self.is_identity() || n == 0 {
            return;
        }
        for (i, row) in c.chunks_exact_mut(n).enumerate() {
            let b = self.bias.map_or(0.0, |b| b[i]);
            match self.residual {
                Some(r) => {
                    for (v, &r) in row.iter_mut().zip(&r[i * n..][..n]) {
                        *v = self.one(*v, b, Some(r));
                    }
                }
                None => row.iter_mut().for_each(|v| *v = self.one(*v, b, None)),
            }
        }
    }

    /// Applies it in place to a tile of C just stored: `rows x cols` from
    /// row `row0`, column `col0` of an `[m, n]` C at `at` (its element
    /// `(row0, col0)`), row stride `n`, on AVX-512F.
    ///
    /// # Safety
    /// AVX-512F is available; the tile lies in C; the bias holds row
    /// `row0 + rows - 1` and the residual element `(row0 + rows - 1) * n +
    /// col0 + cols - 1`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn apply_tile_avx512(
        &self,
        at: *mut f32,
        n: usize,
        (row0, rows): (usize, usize),
        (col0, cols): (usize, usize),
    ) {
        use std::arch::x86_64::*;
        if self.is_identity() {
            return;
        }
        let zero = _mm512_setzero_ps();
        for r in 0..rows {
            let b = _mm512_set1_ps(self.bias.map_or(0.0, |b| b[row0 + r]));
            // SAFETY: the caller's contract: the row's `cols` elements lie
            // in C and in the residual.
            let (dst, res) = unsafe {
                (
                    at.add(r * n),
                    self.residual.map(|s| s.as_ptr().add((row0 + r) * n + col0)),
                )
            };
            for j in (0..cols).step_by(16) {
                let lanes = (cols - j).min(16);
                let mask = (((1u32 << lanes) - 1) & 0xffff) as __mmask16;
                // SAFETY: lanes j..j + lanes of the row, inside the tile.
                unsafe {
                    let mut v = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, dst.add(j)), b);
                    if let Some(res) = res {
                        v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, res.add(j)));
                    }
                    if self.relu {
                        // max returns its second operand when one is NaN:
                        // NaN passes, as through the ReLU op; -0 stays -0.
                        v = _mm512_max_ps(zero, v);
                    }
                    _mm512_mask_storeu_ps(dst.add(j), mask, v);
                }
            }
        }
    }

    /// Never called: the AVX-512 GEMM runs only on x86-64.
    ///
    /// # Safety
    /// None needed; it panics.
    #[cfg(not(target_arch = "x86_64"))]
    pub unsafe fn apply_tile_avx512(
        &self,
        _: *mut f32,
        _: usize,
        _: (usize, usize),
        _: (usize, usize),
    ) {
        unreachable!("gemm_avx512 runs only where available() holds")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values with zeros of both signs, NaN and values either side of zero.
    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| match (i * 7 + seed) % 23 {
                0 => -0.0,
                1 => 0.0,
                2 => f32::NAN,
                k => (k as f32 - 12.0) / 3.0 + seed as f32 * 1e-3,
            })
            .collect()
    }

    /// The tile form gives the bits of the in-place form on every
    /// combination of bias, residual and ReLU, on whole and partial tiles.
    #[test]
    fn the_tile_form_gives_the_bits_of_the_row_form() {
        #[cfg(target_arch = "x86_64")]
        {
            let here = std::arch::is_x86_feature_detected!("avx512f");
            if !crate::test_skip::run_or_skip("AVX512F", here, here) {
                return;
            }
            let (m, n) = (13, 45);
            let bias = values(m, 5);
            let residual = values(m * n, 9);
            let c0 = values(m * n, 1);
            for mask in 0..8 {
                let epi = Epilogue {
                    bias: (mask & 1 != 0).then_some(&bias[..]),
                    residual: (mask & 2 != 0).then_some(&residual[..]),
                    relu: mask & 4 != 0,
                };
                let mut want = c0.clone();
                epi.apply(&mut want, n);
                let mut got = c0.clone();
                // Tiles of 12 x 32 and their partial edges.
                for row0 in (0..m).step_by(12) {
                    for col0 in (0..n).step_by(32) {
                        let (rows, cols) = (12.min(m - row0), 32.min(n - col0));
                        // SAFETY: AVX-512F was detected; the tile lies in
                        // `got`, and bias and residual cover all of C.
                        unsafe {
                            let at = got.as_mut_ptr().add(row0 * n + col0);
                            epi.apply_tile_avx512(at, n, (row0, rows), (col0, cols));
                        }
                    }
                }
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "epilogue {mask:03b}");
            }
        }
    }

    /// The row form writes what the in-place form computes.
    #[test]
    fn row_into_matches_apply() {
        let (m, n) = (3, 10);
        let bias = values(m, 2);
        let residual = values(m * n, 4);
        let src = values(m * n, 6);
        let epi = Epilogue {
            bias: Some(&bias),
            residual: Some(&residual),
            relu: true,
        };
        let mut want = src.clone();
        epi.apply(&mut want, n);
        for i in 0..m {
            let mut dst = vec![MaybeUninit::uninit(); n];
            epi.row_into(&src[i * n..][..n], &mut dst, i, i * n);
            for (j, d) in dst.iter().enumerate() {
                // SAFETY: row_into wrote every element.
                let got = unsafe { d.assume_init() };
                assert_eq!(got.to_bits(), want[i * n + j].to_bits(), "[{i},{j}]");
            }
        }
    }
}
