//! The CPU backend: dense `Vec` storage, kernels on slices, parallel with rayon,
//! GEMM through [`gemm::sgemm`].

mod attention;
mod bf16_pairs;
mod conv;
mod conv_choice;
mod conv_rows;
mod elementwise;
mod epilogue;
mod fill;
pub mod gemm;
#[cfg(target_arch = "x86_64")]
mod gemm_amx;
mod gemm_avx512;
pub mod gemm_bf16;
mod gemm_pack;
mod gemm_parts;
mod layout;
mod norm;
mod optim;
mod pool;
mod prepared;
mod reduce;
mod softmax;
mod spare;
mod storage;
mod threads;
mod vector_math;
mod wide;
mod winograd;

use crate::backend::*;
use crate::{DType, Error, Result, Shape};
use conv_choice::{
    conv_backward_input_bf16, conv_backward_input_f32, conv_f32, conv_forward_f32, winograd_enabled,
};
use fill::PAR_CHUNK;
use half::{bf16, f16, slice::HalfFloatSliceExt};
use rayon::prelude::*;
use std::sync::Arc;
use storage::{f32s, host, on_float_pair, on_float_slice, sole_f32s, store, Float};

pub use conv_choice::{clear_prepared_weights, set_winograd, WINOGRAD_ENV};
pub use storage::CpuStorage;
pub use threads::kernel_pool;

/// The instruction sets this CPU backend's kernels run on here, chosen at
/// run time from what the CPU reports: `(kernel, path)` pairs, for benchmark
/// and bug reports.
pub fn kernel_paths() -> Vec<(&'static str, &'static str)> {
    vec![
        ("f32 gemm", gemm::path()),
        (
            "bf16 gemm",
            if gemm_bf16::available() {
                gemm_bf16::Path::fastest().describe()
            } else {
                "upcast to f32, then the f32 gemm"
            },
        ),
        (
            "f32 conv 3x3 stride 1",
            if winograd_enabled() && gemm_avx512::available() {
                "winograd F(4x4,3x3) or F(2x2,3x3) on avx512f where it pays, else im2col + f32 gemm"
            } else {
                "im2col + f32 gemm"
            },
        ),
        (
            "f32 conv with k <= 256 and rows of >= 32 (stems)",
            if gemm_avx512::available() {
                "by output rows, B panels built from the input, on avx512f"
            } else {
                "im2col + f32 gemm"
            },
        ),
    ]
}

/// The bf16 slices of GEMM operands when every one is bf16 and this CPU has
/// the native bf16 GEMM ([`gemm_bf16`]); `None` sends the call to the
/// upcasting path.
fn native_bf16<const N: usize>(operands: [&Storage; N]) -> Option<[&[bf16]; N]> {
    if !gemm_bf16::available() {
        return None;
    }
    let mut out: [&[bf16]; N] = [&[]; N];
    for (o, s) in out.iter_mut().zip(operands) {
        match s.as_any().downcast_ref::<CpuStorage>() {
            Some(CpuStorage::BF16(v)) => *o = v,
            _ => return None,
        }
    }
    Some(out)
}

/// An f32 GEMM result rounded to bf16 storage.
fn store_bf16(v: Vec<f32>) -> Storage {
    Arc::new(narrow(&v, DType::BF16))
}

/// `v` converted to `to` (round to nearest even).
fn narrow(v: &[f32], to: DType) -> CpuStorage {
    match to {
        DType::F32 => CpuStorage::F32(v.to_vec()),
        DType::F16 => CpuStorage::F16(convert(v, f16::ZERO, |d, s| d.convert_from_f32_slice(s))),
        DType::BF16 => CpuStorage::BF16(convert_each(v)),
    }
}

/// Converts `src` element by element into a new vector, in parallel chunks,
/// without zeroing the output first. For bf16, whose conversions are bit
/// operations the compiler vectorises; f16 goes through [`convert`].
fn convert_each<S: Float, D: Float>(src: &[S]) -> Vec<D> {
    // SAFETY: every output run is written in full, from the input run at the
    // same offset.
    unsafe {
        fill::par_fill(src.len(), PAR_CHUNK, |i, out| {
            let src = &src[i * PAR_CHUNK..i * PAR_CHUNK + out.len()];
            wide::wide(
                #[inline(always)]
                || {
                    for (o, &v) in out.iter_mut().zip(src) {
                        o.write(D::from_f32(v.to_f32()));
                    }
                },
            )
        })
    }
}

/// Converts `src` element by element into a new vector, in parallel chunks,
/// with `half`'s slice conversions (F16C instructions where the CPU has them).
fn convert<S: Sync, D: Copy + Send + Sync>(
    src: &[S],
    zero: D,
    f: impl Fn(&mut [D], &[S]) + Sync,
) -> Vec<D> {
    let mut out = vec![zero; src.len()];
    out.par_chunks_mut(PAR_CHUNK)
        .zip(src.par_chunks(PAR_CHUNK))
        .for_each(|(d, s)| f(d, s));
    out
}

/// Checks that each named operand has the `len` elements of the first one:
/// the kernels walk them in step.
fn same_len(op: &str, len: usize, others: &[(&str, usize)]) -> Result<()> {
    match others.iter().find(|(_, l)| *l != len) {
        None => Ok(()),
        Some((name, l)) => Err(Error::Backend {
            backend: "cpu".into(),
            msg: format!("{op}: {name} has {l} elements, expected {len}"),
        }),
    }
}

/// Linear layers keep their weights packed ([`CpuBackend::linear`]) only
/// for products of at most this many rows: a ViT's tokens at batch 1 (50 or
/// 197 rows) ran 6-10% faster, where packing the weights took a fifth of
/// the time; 400 rows (batch 8) ran 4-5% slower than packing per call.
const KEPT_LINEAR_MAX_ROWS: usize = 256;

/// The CPU backend (`Device::cpu()`).
#[derive(Debug, Default, Clone, Copy)]
pub struct CpuBackend;

impl Backend for CpuBackend {
    fn name(&self) -> String {
        "cpu".into()
    }

    fn upload(&self, data: HostData) -> Result<Storage> {
        Ok(Arc::new(match data {
            HostData::F32(v) => CpuStorage::F32(v),
            HostData::F16(v) => CpuStorage::F16(v),
            HostData::BF16(v) => CpuStorage::BF16(v),
        }))
    }

    fn download(&self, s: &Storage) -> Result<HostData> {
        match s.as_any().downcast_ref::<CpuStorage>() {
            Some(CpuStorage::F32(v)) => Ok(HostData::F32(v.clone())),
            Some(CpuStorage::F16(v)) => Ok(HostData::F16(v.clone())),
            Some(CpuStorage::BF16(v)) => Ok(HostData::BF16(v.clone())),
            None => Err(Error::Backend {
                backend: "cpu".into(),
                msg: "storage belongs to another backend".into(),
            }),
        }
    }

    fn full(&self, len: usize, value: f32) -> Result<Storage> {
        Ok(store(vec![value; len]))
    }

    fn cast(&self, s: &Storage, to: DType) -> Result<Storage> {
        let src = s
            .as_any()
            .downcast_ref::<CpuStorage>()
            .ok_or_else(|| Error::Backend {
                backend: "cpu".into(),
                msg: "storage belongs to another backend".into(),
            })?;
        let wide = match src {
            CpuStorage::F32(v) => return Ok(Arc::new(narrow(v, to))),
            CpuStorage::F16(v) => convert(v, 0.0, |d, s| s.convert_to_f32_slice(d)),
            CpuStorage::BF16(v) => convert_each(v),
        };
        // Half to f32 is exact; half to the other half type goes through it.
        Ok(Arc::new(match to {
            DType::F32 => CpuStorage::F32(wide),
            _ => narrow(&wide, to),
        }))
    }

    fn unary(&self, op: UnaryOp, x: &Storage) -> Result<Storage> {
        Ok(on_float_slice!(host(x)?, x => Float::into_storage(elementwise::unary(op, x))))
    }
    fn unary_backward(&self, op: UnaryOp, x: &Storage, dy: &Storage) -> Result<Storage> {
        same_len("unary_backward", x.len(), &[("dy", dy.len())])?;
        on_float_pair!("unary_backward", host(x)?, host(dy)?, (x, dy) => {
            Float::into_storage(elementwise::unary_backward(op, x, dy))
        })
    }
    fn binary(
        &self,
        op: BinaryOp,
        a: (&Storage, &Shape),
        b: (&Storage, &Shape),
        out: &Shape,
    ) -> Result<Storage> {
        on_float_pair!("binary", host(a.0)?, host(b.0)?, (x, y) => {
            Float::into_storage(elementwise::binary(op, (x, a.1), (y, b.1), out))
        })
    }

    fn reduce(&self, op: ReduceOp, x: &Storage, shape: &Shape, axes: &[usize]) -> Result<Storage> {
        Ok(store(reduce::reduce(op, f32s(x)?, shape, axes)))
    }
    fn argmax(&self, x: &Storage, view: AxisView) -> Result<Vec<u32>> {
        Ok(reduce::argmax(f32s(x)?, view))
    }

    fn matmul(&self, a: &Storage, b: &Storage, spec: MatmulSpec) -> Result<Storage> {
        if let Some([a, b]) = native_bf16([a, b]) {
            return Ok(store_bf16(gemm::batched(a, b, spec)));
        }
        half_through_f32(self, "matmul", &[a, b], |s| {
            Ok(store(gemm::batched(f32s(s[0])?, f32s(s[1])?, spec)))
        })
    }

    fn linear(&self, x: &Storage, w: &Storage, spec: MatmulSpec) -> Result<Storage> {
        // Outside gradient recording (inference), f32 weights multiplying
        // few rows are packed as the GEMM's B once and kept while they
        // live ([`prepared`]).
        let keep = !crate::is_grad_enabled()
            && gemm_avx512::available()
            && spec.m <= KEPT_LINEAR_MAX_ROWS
            && spec.batch == 1
            && !spec.trans_a
            && spec.trans_b;
        if let (true, Ok(xs), Ok(ws)) = (keep, f32s(x), f32s(w)) {
            let (k, n) = (spec.k, spec.n);
            if ws.len() == n * k && xs.len() == spec.m * k {
                let b = prepared::get_or_make(
                    w,
                    [n, k, 1, 1, 1],
                    prepared::Preparation::LinearB,
                    || gemm_avx512::PackedB::from_transposed(n, k, ws),
                );
                return Ok(store(gemm::linear_packed(xs, &b, spec.m)));
            }
        }
        prepared::prune();
        self.matmul(x, w, spec)
    }

    fn strided_copy(
        &self,
        x: &Storage,
        out: &Shape,
        strides: &[usize],
        offset: usize,
    ) -> Result<Storage> {
        Ok(store(layout::strided_copy(f32s(x)?, out, strides, offset)))
    }
    fn concat(&self, parts: &[(&Storage, usize)], outer: usize, inner: usize) -> Result<Storage> {
        let parts: Vec<(&[f32], usize)> = parts
            .iter()
            .map(|(s, l)| Ok((f32s(s)?, *l)))
            .collect::<Result<_>>()?;
        Ok(store(layout::concat(&parts, outer, inner)))
    }
    fn index_select(&self, x: &Storage, view: AxisView, index: &[usize]) -> Result<Storage> {
        Ok(store(layout::index_select(f32s(x)?, view, index)))
    }
    fn index_add(&self, dy: &Storage, view: AxisView, index: &[usize]) -> Result<Storage> {
        Ok(store(layout::index_add(f32s(dy)?, view, index)))
    }

    fn conv2d(&self, x: &Storage, w: &Storage, g: &Conv2dGeometry) -> Result<Storage> {
        if let Some([x, w]) = native_bf16([x, w]) {
            return Ok(store_bf16(conv::forward(x, w, g)));
        }
        if let (Ok(xs), Ok(_)) = (f32s(x), f32s(w)) {
            // f32 weights as stored: kept prepared at inference.
            return Ok(store(conv_f32(xs, w, g, epilogue::Epilogue::default())?));
        }
        half_through_f32(self, "conv2d", &[x, w], |s| {
            Ok(store(conv_forward_f32(f32s(s[0])?, f32s(s[1])?, g)))
        })
    }
    fn conv2d_fused(
        &self,
        x: &Storage,
        w: &Storage,
        g: &Conv2dGeometry,
        epi: &ConvEpilogue<'_>,
    ) -> Result<Storage> {
        if let Some([x, w]) = native_bf16([x, w]) {
            // bf16 products accumulated in f32, the epilogue in f32, the
            // result rounded once to bf16.
            let residual = match epi.residual.map(host).transpose()? {
                None => None,
                Some(CpuStorage::BF16(r)) => Some(&r[..]),
                Some(other) => {
                    return Err(Error::DType {
                        op: "conv2d (fused)",
                        got: other.dtype(),
                        expected: "bf16, the input's dtype, for the residual".into(),
                    })
                }
            };
            let y = conv::forward(x, w, g);
            let bias = epi.bias.map(f32s).transpose()?;
            let out =
                elementwise::conv_epilogue_to(&y, g.c_out, g.oh * g.ow, bias, residual, epi.act);
            return Ok(Arc::new(CpuStorage::BF16(out)));
        }
        if x.dtype() != DType::F32 {
            return fused_conv_through_f32(self, x, w, g, epi);
        }
        let bias = epi.bias.map(f32s).transpose()?;
        let residual = epi.residual.map(f32s).transpose()?;
        let relu = epi.act == Some(UnaryOp::Relu);
        if relu || epi.act.is_none() {
            let epi = epilogue::Epilogue {
                bias,
                residual,
                relu,
            };
            return Ok(store(conv_f32(f32s(x)?, w, g, epi)?));
        }
        let mut y = conv_forward_f32(f32s(x)?, f32s(w)?, g);
        elementwise::conv_epilogue(&mut y, g.c_out, g.oh * g.ow, bias, residual, epi.act);
        Ok(store(y))
    }
    fn conv2d_backward_input(
        &self,
        dy: &Storage,
        w: &Storage,
        g: &Conv2dGeometry,
    ) -> Result<Storage> {
        if let Some([dy, w]) = native_bf16([dy, w]) {
            return Ok(store_bf16(conv_backward_input_bf16(dy, w, g)));
        }
        half_through_f32(self, "conv2d backward (input)", &[dy, w], |s| {
            Ok(store(conv_backward_input_f32(f32s(s[0])?, f32s(s[1])?, g)))
        })
    }
    fn conv2d_backward_weight(
        &self,
        x: &Storage,
        dy: &Storage,
        g: &Conv2dGeometry,
    ) -> Result<Storage> {
        if let Some([x, dy]) = native_bf16([x, dy]) {
            return Ok(store_bf16(conv::backward_weight(x, dy, g)));
        }
        half_through_f32(self, "conv2d backward (weight)", &[x, dy], |s| {
            Ok(store(conv::backward_weight(f32s(s[0])?, f32s(s[1])?, g)))
        })
    }

    fn max_pool2d(&self, x: &Storage, g: &Pool2dGeometry) -> Result<Storage> {
        Ok(store(pool::max_forward(f32s(x)?, g)))
    }
    fn max_pool2d_backward(
        &self,
        x: &Storage,
        dy: &Storage,
        g: &Pool2dGeometry,
    ) -> Result<Storage> {
        Ok(store(pool::max_backward(f32s(x)?, f32s(dy)?, g)))
    }
    fn avg_pool2d(&self, x: &Storage, g: &Pool2dGeometry) -> Result<Storage> {
        Ok(store(pool::avg_forward(f32s(x)?, g)))
    }
    fn avg_pool2d_backward(&self, dy: &Storage, g: &Pool2dGeometry) -> Result<Storage> {
        Ok(store(pool::avg_backward(f32s(dy)?, g)))
    }
    fn adaptive_avg_pool2d(&self, x: &Storage, g: &Pool2dGeometry) -> Result<Storage> {
        Ok(store(pool::adaptive_forward(f32s(x)?, g)))
    }
    fn adaptive_avg_pool2d_backward(&self, dy: &Storage, g: &Pool2dGeometry) -> Result<Storage> {
        Ok(store(pool::adaptive_backward(f32s(dy)?, g)))
    }

    fn batch_norm(
        &self,
        x: &Storage,
        view: AxisView,
        gamma: &Storage,
        beta: &Storage,
        eps: f32,
    ) -> Result<(Storage, NormStats)> {
        let (gamma, beta) = (f32s(gamma)?, f32s(beta)?);
        let (y, mean, rstd) = on_float_slice!(host(x)?, x => {
            let (y, mean, rstd) = norm::batch_forward(x, view, gamma, beta, eps);
            (Float::into_storage(y), mean, rstd)
        });
        Ok((
            y,
            NormStats {
                mean: store(mean),
                rstd: store(rstd),
            },
        ))
    }
    fn batch_norm_backward(
        &self,
        x: &Storage,
        dy: &Storage,
        view: AxisView,
        gamma: &Storage,
        stats: &NormStats,
    ) -> Result<NormGrads> {
        let gamma = f32s(gamma)?;
        let (mean, rstd) = (f32s(&stats.mean)?, f32s(&stats.rstd)?);
        same_len("batch_norm_backward", x.len(), &[("dy", dy.len())])?;
        // dy is f32, or of x's dtype (the gradient of a half output).
        let (dx, dg, db) = match host(dy)? {
            CpuStorage::F32(dy) => {
                on_float_slice!(host(x)?, x => norm::batch_backward(x, dy, view, gamma, mean, rstd))
            }
            _ => on_float_pair!("batch_norm_backward", host(x)?, host(dy)?, (x, dy) => {
                norm::batch_backward(x, dy, view, gamma, mean, rstd)
            })?,
        };
        Ok(NormGrads {
            dx,
            dgamma: store(dg),
            dbeta: store(db),
        })
    }
    fn row_norm(
        &self,
        x: &Storage,
        rows: usize,
        cols: usize,
        affine: RowAffine,
        gamma: &Storage,
        beta: &Storage,
        eps: f32,
    ) -> Result<(Storage, NormStats)> {
        let (gamma, beta) = (f32s(gamma)?, f32s(beta)?);
        same_len("row_norm", rows * cols, &[("x", x.len())])?;
        let (y, mean, rstd) = on_float_slice!(host(x)?, x => {
            let (y, mean, rstd) = norm::row_forward(x, rows, cols, affine, gamma, beta, eps);
            (Float::into_storage(y), mean, rstd)
        });
        Ok((
            y,
            NormStats {
                mean: store(mean),
                rstd: store(rstd),
            },
        ))
    }
    fn row_norm_backward(
        &self,
        x: &Storage,
        dy: &Storage,
        rows: usize,
        cols: usize,
        affine: RowAffine,
        gamma: &Storage,
        stats: &NormStats,
    ) -> Result<NormGrads> {
        let gamma = f32s(gamma)?;
        let (mean, rstd) = (f32s(&stats.mean)?, f32s(&stats.rstd)?);
        same_len(
            "row_norm_backward",
            rows * cols,
            &[
                ("x", x.len()),
                ("dy", dy.len()),
                ("mean", mean.len() * cols),
            ],
        )?;
        // dy is f32, or of x's dtype (the gradient of a half output).
        let (dx, dg, db) = match host(dy)? {
            CpuStorage::F32(dy) => on_float_slice!(host(x)?, x => {
                norm::row_backward(x, dy, rows, cols, affine, gamma, mean, rstd)
            }),
            _ => on_float_pair!("row_norm_backward", host(x)?, host(dy)?, (x, dy) => {
                norm::row_backward(x, dy, rows, cols, affine, gamma, mean, rstd)
            })?,
        };
        Ok(NormGrads {
            dx,
            dgamma: store(dg),
            dbeta: store(db),
        })
    }

    /// The fused kernel ([`attention::forward`]): keeps each row's
    /// log-sum-exp, not the weights.
    fn attention(
        &self,
        q: &Storage,
        k: &Storage,
        v: &Storage,
        spec: AttentionSpec,
    ) -> Result<(Storage, Storage)> {
        let (o, lse) = attention::forward(f32s(q)?, f32s(k)?, f32s(v)?, spec);
        Ok((store(o), store(lse)))
    }
    fn attention_backward(
        &self,
        q: &Storage,
        k: &Storage,
        v: &Storage,
        o: &Storage,
        saved: &Storage,
        d_o: &Storage,
        spec: AttentionSpec,
    ) -> Result<[Storage; 3]> {
        let [dq, dk, dv] = attention::backward(
            f32s(q)?,
            f32s(k)?,
            f32s(v)?,
            f32s(o)?,
            f32s(saved)?,
            f32s(d_o)?,
            spec,
        );
        Ok([store(dq), store(dk), store(dv)])
    }

    fn softmax(&self, x: &Storage, view: AxisView, log: bool) -> Result<Storage> {
        Ok(store(softmax::forward(f32s(x)?, view, log)))
    }
    fn softmax_backward(
        &self,
        y: &Storage,
        dy: &Storage,
        view: AxisView,
        log: bool,
    ) -> Result<Storage> {
        Ok(store(softmax::backward(f32s(y)?, f32s(dy)?, view, log)))
    }
    fn cross_entropy(
        &self,
        logits: &Storage,
        n: usize,
        c: usize,
        targets: &[usize],
        smoothing: f32,
    ) -> Result<Storage> {
        Ok(store(vec![softmax::cross_entropy(
            f32s(logits)?,
            n,
            c,
            targets,
            smoothing,
        )]))
    }
    fn cross_entropy_backward(
        &self,
        logits: &Storage,
        n: usize,
        c: usize,
        targets: &[usize],
        smoothing: f32,
        dloss: &Storage,
    ) -> Result<Storage> {
        let dl = f32s(dloss)?[0];
        Ok(store(softmax::cross_entropy_backward(
            f32s(logits)?,
            n,
            c,
            targets,
            smoothing,
            dl,
        )))
    }

    fn sgd_step(
        &self,
        p: &Storage,
        g: &Storage,
        buf: Option<&Storage>,
        h: &SgdHyper,
    ) -> Result<(Storage, Option<Storage>)> {
        let buf = buf.map(f32s).transpose()?;
        let (p, g) = (f32s(p)?, f32s(g)?);
        same_len(
            "sgd_step",
            p.len(),
            &[
                ("grad", g.len()),
                ("momentum buffer", buf.map_or(p.len(), <[f32]>::len)),
            ],
        )?;
        let (p, b) = optim::sgd(p, g, buf, h);
        Ok((store(p), b.map(store)))
    }
    fn adamw_step(
        &self,
        p: &Storage,
        g: &Storage,
        mut m: Storage,
        mut v: Storage,
        h: &AdamWHyper,
    ) -> Result<(Storage, Storage, Storage)> {
        let (p, g) = (f32s(p)?, f32s(g)?);
        same_len(
            "adamw_step",
            p.len(),
            &[("grad", g.len()), ("m", m.len()), ("v", v.len())],
        )?;
        // Moments that no tensor holds are updated where they lie: no new
        // buffers (and no fresh pages for the kernel to zero) each step.
        if let (Some(ms), Some(vs)) = (sole_f32s(&mut m), sole_f32s(&mut v)) {
            let p = optim::adamw_in_place(p, g, ms, vs, h);
            return Ok((store(p), m, v));
        }
        let (p, m, v) = optim::adamw(p, g, f32s(&m)?, f32s(&v)?, h);
        Ok((store(p), store(m), store(v)))
    }
    fn dropout(&self, x: &Storage, p: f32, seed: u64) -> Result<Storage> {
        Ok(store(elementwise::dropout(f32s(x)?, p, seed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bf16 3x3 stride-1 convolution's input gradient through the turned
    /// kernels (padding 0, 1 and 2 on different sides, more than one sample)
    /// equals the transposed GEMM + col2im's to f32 rounding: both sum the
    /// same exact bf16 products in f32, in different orders.
    #[test]
    fn bf16_input_gradient_through_the_turned_kernels_matches_col2im() {
        if !gemm_bf16::test_runs_here() {
            return;
        }
        // 9 x 11 padded by [1, 2] rows and [0, 1] columns: a 10 x 10 output.
        let g = Conv2dGeometry {
            n: 3,
            c_in: 24,
            h: 9,
            w: 11,
            c_out: 16,
            kh: 3,
            kw: 3,
            oh: 10,
            ow: 10,
            p: Conv2dParams {
                padding: [1, 2, 0, 1],
                ..Default::default()
            },
        };
        assert!(
            conv_choice::turned_geometry(&g).is_some(),
            "the test's shape is turned"
        );
        let half = |seed, len| -> Vec<bf16> {
            crate::rng::normal(seed, len, 0.0, 1.0)
                .iter()
                .map(|&v| bf16::from_f32(v))
                .collect()
        };
        let dy = half(1, g.n * g.c_out * g.oh * g.ow);
        let w = half(2, g.c_out * g.c_in * 9);
        let turned = conv_backward_input_bf16(&dy, &w, &g);
        let col2im = conv::backward_input(&dy, &w, &g);
        let scale = col2im.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (i, (a, b)) in turned.iter().zip(&col2im).enumerate() {
            assert!((a - b).abs() <= 1e-5 * scale, "[{i}] {a} vs {b}");
        }
    }

    /// Outside gradient recording the inference convolution packs (or
    /// Winograd-transforms) its weights once and keeps them while they
    /// live: the second call reuses them and gives the first call's bits,
    /// which are the bits of the same convolution under gradient recording
    /// (weights packed per call) — for a Winograd, two 1x1 and a grouped
    /// strided convolution. The kept values go with the weights.
    #[test]
    fn kept_inference_weights_give_the_bits_of_weights_packed_per_call() {
        let avx512 = gemm_avx512::available();
        if !crate::test_skip::run_or_skip("AVX512F", avx512, avx512) {
            return;
        }
        let shapes = [
            // Winograd (16 channels, 16 x 16 output), 1x1, grouped 3x3 stride 2.
            (
                [2, 16, 16, 16],
                [16, 16, 3, 3],
                Conv2dParams::new(1, 1, 1, 1),
            ),
            ([3, 40, 9, 9], [24, 40, 1, 1], Conv2dParams::new(1, 0, 1, 1)),
            ([2, 8, 11, 10], [12, 4, 3, 3], Conv2dParams::new(2, 1, 1, 2)),
            // More rows than columns, large enough to split the rows
            // between threads (at a panel's start) where there are several.
            (
                [1, 64, 7, 7],
                [300, 64, 1, 1],
                Conv2dParams::new(1, 0, 1, 1),
            ),
            // Winograd F(2x2) (7 x 7 output), a stem by output rows (40 x 40).
            ([2, 16, 7, 7], [16, 16, 3, 3], Conv2dParams::new(1, 1, 1, 1)),
            ([1, 3, 80, 80], [8, 3, 7, 7], Conv2dParams::new(2, 3, 1, 1)),
        ];
        for (i, (x_dims, w_dims, p)) in shapes.into_iter().enumerate() {
            let g = Conv2dGeometry::new(&Shape::new(x_dims), &Shape::new(w_dims), &p).unwrap();
            let seed = 10 * i as u64;
            let x = store(crate::rng::normal(seed, x_dims.iter().product(), 0.0, 1.0));
            let w = store(crate::rng::normal(
                seed + 1,
                w_dims.iter().product(),
                0.0,
                0.3,
            ));
            let bias = store(crate::rng::normal(seed + 2, g.c_out, 0.0, 1.0));
            let residual = store(crate::rng::normal(
                seed + 3,
                g.n * g.c_out * g.oh * g.ow,
                0.0,
                1.0,
            ));
            let epi = ConvEpilogue {
                bias: Some(&bias),
                residual: Some(&residual),
                act: Some(UnaryOp::Relu),
            };
            assert_kept_with_the_same_bits(i, &w, 1, || {
                bits(&CpuBackend.conv2d_fused(&x, &w, &g, &epi).unwrap())
            });
            assert_freed_with_the_weights(i, w);
        }
    }

    /// One weight convolving inputs of two sizes keeps both of its Winograd
    /// transforms, F(4x4) for the 16 x 16 output and F(2x2) for the 7 x 7,
    /// each giving the bits of the weights transformed per call.
    #[test]
    fn one_weight_at_two_sizes_keeps_both_winograd_transforms() {
        let avx512 = gemm_avx512::available();
        if !crate::test_skip::run_or_skip("AVX512F", avx512, avx512) {
            return;
        }
        let w = store(crate::rng::normal(1, 16 * 16 * 9, 0.0, 0.3));
        let p = Conv2dParams::new(1, 1, 1, 1);
        let inputs = [[2, 16, 16, 16], [2, 16, 7, 7]].map(|dims| {
            let g = Conv2dGeometry::new(&Shape::new(dims), &Shape::new([16, 16, 3, 3]), &p);
            let x = store(crate::rng::normal(2, dims.iter().product(), 0.0, 1.0));
            (g.unwrap(), x)
        });
        let tiles = [0, 1].map(|i| winograd::choose(&inputs[i].0));
        assert_eq!(tiles, [Some(winograd::Tile::F4), Some(winograd::Tile::F2)]);
        // Both sizes in one run: the bits of both outputs, two entries kept.
        assert_kept_with_the_same_bits(0, &w, 2, || {
            inputs
                .iter()
                .flat_map(|(g, x)| bits(&CpuBackend.conv2d(x, &w, g).unwrap()))
                .collect()
        });
        assert_freed_with_the_weights(0, w);
    }

    /// The bits of an f32 result.
    fn bits(y: &Storage) -> Vec<u32> {
        f32s(y).unwrap().iter().map(|v| v.to_bits()).collect()
    }

    /// Runs `run` under gradient recording (nothing kept for `w`), then
    /// twice outside it (`kept` entries for `w`): the three give the same
    /// bits.
    fn assert_kept_with_the_same_bits(
        i: usize,
        w: &Storage,
        kept: usize,
        run: impl Fn() -> Vec<u32>,
    ) {
        let per_call = run();
        assert_eq!(prepared::kept_for(w), 0, "shape {i}: kept under recording");
        let first = crate::no_grad(&run);
        assert_eq!(prepared::kept_for(w), kept, "shape {i}: kept or not");
        let second = crate::no_grad(&run);
        assert!(first == per_call, "shape {i}: kept weights change the bits");
        assert!(second == first, "shape {i}: the second call differs");
    }

    /// Drops the weights `w`: any later lookup frees what was kept for
    /// them (the weak kept here stops the address from being reused
    /// meanwhile).
    fn assert_freed_with_the_weights(i: usize, w: Storage) {
        let weak = Arc::downgrade(&w);
        drop(w);
        let other = store(vec![0.0; 1]);
        prepared::get_or_make(
            &other,
            [1, 1, 1, 1, 1],
            prepared::Preparation::ConvGemm,
            Vec::new,
        );
        let at = weak.as_ptr().cast::<()>() as usize;
        assert_eq!(
            prepared::kept_at(at),
            0,
            "shape {i}: kept after the weights' drop"
        );
    }

    /// The plain convolution (no epilogue: a StdConv's standardised
    /// weights, cached by the layer at evaluation) keeps its weights
    /// outside gradient recording too, with the bits of weights prepared
    /// per call, for a Winograd and a 1x1 convolution.
    #[test]
    fn plain_convolutions_keep_inference_weights_too() {
        let avx512 = gemm_avx512::available();
        if !crate::test_skip::run_or_skip("AVX512F", avx512, avx512) {
            return;
        }
        let shapes = [
            (
                [2, 16, 16, 16],
                [16, 16, 3, 3],
                Conv2dParams::new(1, 1, 1, 1),
            ),
            ([3, 40, 9, 9], [24, 40, 1, 1], Conv2dParams::new(1, 0, 1, 1)),
        ];
        for (i, (x_dims, w_dims, p)) in shapes.into_iter().enumerate() {
            let g = Conv2dGeometry::new(&Shape::new(x_dims), &Shape::new(w_dims), &p).unwrap();
            let seed = 200 + 10 * i as u64;
            let x = store(crate::rng::normal(seed, x_dims.iter().product(), 0.0, 1.0));
            let w = store(crate::rng::normal(
                seed + 1,
                w_dims.iter().product(),
                0.0,
                0.3,
            ));
            assert_kept_with_the_same_bits(i, &w, 1, || {
                bits(&CpuBackend.conv2d(&x, &w, &g).unwrap())
            });
        }
    }

    /// A linear layer outside gradient recording keeps its weights packed
    /// as the GEMM's B, and gives the bits of the same product under
    /// gradient recording (B packed per call); the kept values go with the
    /// weights.
    #[test]
    fn kept_linear_weights_give_the_bits_of_weights_packed_per_call() {
        let avx512 = gemm_avx512::available();
        if !crate::test_skip::run_or_skip("AVX512F", avx512, avx512) {
            return;
        }
        // [rows, in] x [out, in]^T: a ViT's tokens at batch 1, a partial
        // panel, more rows than columns, and more rows than are kept for.
        let shapes = [
            (50, 384, 1152),
            (7, 33, 45),
            (KEPT_LINEAR_MAX_ROWS, 64, 40),
            (KEPT_LINEAR_MAX_ROWS + 1, 64, 40),
        ];
        for (i, (m, k, n)) in shapes.into_iter().enumerate() {
            let kept = usize::from(m <= KEPT_LINEAR_MAX_ROWS);
            let seed = 100 + 10 * i as u64;
            let x = store(crate::rng::normal(seed, m * k, 0.0, 1.0));
            let w = store(crate::rng::normal(seed + 1, n * k, 0.0, 0.3));
            let spec = MatmulSpec {
                batch: 1,
                m,
                k,
                n,
                trans_a: false,
                trans_b: true,
                a_shared: false,
                b_shared: false,
            };
            assert_kept_with_the_same_bits(i, &w, kept, || {
                bits(&CpuBackend.linear(&x, &w, spec).unwrap())
            });
            assert_freed_with_the_weights(i, w);
        }
    }
}
