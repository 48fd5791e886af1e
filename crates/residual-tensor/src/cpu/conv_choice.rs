//! Which algorithm an f32 convolution runs on: Winograd
//! ([`super::winograd`]) for the 3x3 stride-1 ones where it pays, by output
//! rows ([`super::conv_rows`]) for the stems, else im2col + GEMM
//! ([`super::conv`]); the input gradient of a 3x3 stride-1 convolution (f32
//! or bf16) as the forward convolution of `dy` with the turned kernels; and,
//! outside gradient recording, the inference weights prepared once
//! ([`prepared`]).

use super::storage::f32s;
use super::{conv, conv_rows, epilogue, gemm_avx512, prepared, winograd};
use crate::backend::*;
use crate::Result;
use half::bf16;

/// The environment variable that turns the Winograd convolutions off
/// (`RESIDUAL_WINOGRAD=0`): every f32 convolution then runs as im2col + GEMM,
/// whose rounding is closer to a direct product's.
pub const WINOGRAD_ENV: &str = "RESIDUAL_WINOGRAD";

/// Whether the f32 convolutions may use Winograd: 0 not yet decided, 1 on, 2 off.
static WINOGRAD: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Turns the Winograd convolutions ([`winograd`]) on or off for the rest of
/// the process, whatever [`WINOGRAD_ENV`] says.
///
/// Winograd's rounding (about 1e-5 of a layer's largest output, against
/// im2col + GEMM's 3e-7) is re-drawn by any change of the inputs' last bits,
/// so two runs whose weights differ by rounding (a batch summed in another
/// order, on another number of ranks) differ by that much after a step, not
/// by the change itself. Turn it off where runs must agree more closely.
pub fn set_winograd(on: bool) {
    WINOGRAD.store(if on { 1 } else { 2 }, std::sync::atomic::Ordering::Relaxed);
}

/// Drops the weights that inference convolutions keep prepared (packed for
/// the GEMM, or Winograd-transformed): they go with their weights anyway,
/// at the next inference convolution; this frees them now. Later calls
/// prepare them again.
pub fn clear_prepared_weights() {
    prepared::clear();
}

/// Whether the f32 convolutions may use [`winograd`]: as [`set_winograd`]
/// said, else on unless [`WINOGRAD_ENV`] is `0` (read once).
pub(super) fn winograd_enabled() -> bool {
    use std::sync::atomic::Ordering::Relaxed;
    match WINOGRAD.load(Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let on = std::env::var(WINOGRAD_ENV).map_or(true, |v| v.trim() != "0");
            // A concurrent set_winograd wins.
            let _ = WINOGRAD.compare_exchange(0, if on { 1 } else { 2 }, Relaxed, Relaxed);
            WINOGRAD.load(Relaxed) == 1
        }
    }
}

/// The forward convolution whose output is the input gradient of `g`, for a
/// 3x3, stride-1, undilated, ungrouped convolution padded by at most 2: the
/// convolution of `dy` with the kernels turned by 180 degrees and their
/// channels swapped ([`turned_kernels`]), padded by `2 - pad`. `None` for
/// other convolutions.
pub(super) fn turned_geometry(g: &Conv2dGeometry) -> Option<Conv2dGeometry> {
    let plain = g.kh == 3
        && g.kw == 3
        && g.p.stride == (1, 1)
        && g.p.dilation == (1, 1)
        && g.p.groups == 1
        && g.p.padding.iter().all(|&p| p <= 2);
    if !plain {
        return None;
    }
    let [top, bottom, left, right] = g.p.padding.map(|p| 2 - p);
    let t = Conv2dGeometry {
        n: g.n,
        c_in: g.c_out,
        h: g.oh,
        w: g.ow,
        c_out: g.c_in,
        kh: g.kh,
        kw: g.kw,
        oh: g.h,
        ow: g.w,
        p: Conv2dParams {
            padding: [top, bottom, left, right],
            ..g.p
        },
    };
    (g.oh + top + bottom == g.h + 2 && g.ow + left + right == g.w + 2).then_some(t)
}

/// `w: [o, c, 3, 3]` turned for [`turned_geometry`]: `[c, o, 3, 3]`, tap
/// `(a, b)` from `(2 - a, 2 - b)`.
fn turned_kernels<T: Copy + Default>(w: &[T], g: &Conv2dGeometry) -> Vec<T> {
    let (o, c) = (g.c_out, g.c_in);
    let mut turned = vec![T::default(); o * c * 9];
    for oc in 0..o {
        for ic in 0..c {
            let src = &w[(oc * c + ic) * 9..][..9];
            let dst = &mut turned[(ic * o + oc) * 9..][..9];
            for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                *d = *s;
            }
        }
    }
    turned
}

/// An f32 convolution's input gradient: for a 3x3 stride-1 convolution, the
/// forward convolution of `dy` with the turned kernels ([`turned_geometry`])
/// on Winograd where that applies and pays; else the transposed GEMM +
/// col2im.
pub(super) fn conv_backward_input_f32(dy: &[f32], w: &[f32], g: &Conv2dGeometry) -> Vec<f32> {
    if let Some(t) = turned_geometry(g) {
        if let Some(tile) = winograd_tile(&t) {
            let turned = turned_kernels(w, g);
            return winograd::forward(dy, &turned, &t, tile, winograd::Epilogue::default());
        }
    }
    conv::backward_input(dy, w, g)
}

/// A bf16 convolution's input gradient: for a 3x3 stride-1 convolution, the
/// forward convolution of `dy` with the turned kernels ([`turned_geometry`]),
/// im2col of `dy` in bf16 + the bf16 GEMM writing `dx` directly; else the
/// transposed GEMM + col2im, whose columns are f32 and 9 times `dx`.
pub(super) fn conv_backward_input_bf16(dy: &[bf16], w: &[bf16], g: &Conv2dGeometry) -> Vec<f32> {
    match turned_geometry(g) {
        Some(t) => conv::forward(dy, &turned_kernels(w, g), &t),
        None => conv::backward_input(dy, w, g),
    }
}

/// The f32 convolution `y = epi(conv(x, w))` of the weights' storage `w`:
/// outside gradient recording (inference), on AVX-512, the weights are
/// prepared once (packed, or Winograd-transformed) and kept while they live
/// ([`prepared`]); the bits are those of weights prepared per call.
pub(super) fn conv_f32(
    xs: &[f32],
    w: &Storage,
    g: &Conv2dGeometry,
    epi: epilogue::Epilogue<'_>,
) -> Result<Vec<f32>> {
    let ws = f32s(w)?;
    if crate::is_grad_enabled() || !gemm_avx512::available() {
        prepared::prune();
        return Ok(conv_fused_f32(xs, ws, g, epi));
    }
    let shape = prepared::conv_shape(g);
    if let Some(tile) = winograd_tile(g) {
        let u = prepared::get_or_make(w, shape, prepared::Preparation::Winograd(tile), || {
            winograd::transform_weights(ws, g, tile)
        });
        return Ok(winograd::forward_transformed(xs, &u, g, tile, epi));
    }
    let p = prepared::get_or_make(w, shape, prepared::Preparation::ConvGemm, || {
        conv::pack_weights(ws, g)
    });
    if conv_rows::applies(g) {
        // Ungrouped: the one packed operand is the whole [o, k] A.
        return Ok(conv_rows::forward(xs, &p[0], g, epi));
    }
    let packed = conv::Weights::Packed(&p[..]);
    Ok(conv::forward_fused(xs, packed, g, &epi))
}

/// The Winograd algorithm of the f32 convolution `g`, where Winograd is on
/// and one applies and pays ([`winograd::choose`]).
fn winograd_tile(g: &Conv2dGeometry) -> Option<winograd::Tile> {
    winograd_enabled().then(|| winograd::choose(g)).flatten()
}

/// An f32 convolution's forward: Winograd where it applies and pays, else
/// by output rows ([`conv_rows`]: the stems) where that applies, else
/// im2col + GEMM.
pub(super) fn conv_forward_f32(x: &[f32], w: &[f32], g: &Conv2dGeometry) -> Vec<f32> {
    conv_fused_f32(x, w, g, epilogue::Epilogue::default())
}

/// [`conv_forward_f32`] with an epilogue, the weights prepared for this
/// call.
fn conv_fused_f32(
    x: &[f32],
    w: &[f32],
    g: &Conv2dGeometry,
    epi: epilogue::Epilogue<'_>,
) -> Vec<f32> {
    if let Some(tile) = winograd_tile(g) {
        return winograd::forward(x, w, g, tile, epi);
    }
    if conv_rows::applies(g) {
        // Ungrouped: the one packed operand is the whole [o, k] A.
        return conv_rows::forward(x, &conv::pack_weights(w, g)[0], g, epi);
    }
    conv::forward_fused(x, conv::Weights::Stored(w), g, &epi)
}
