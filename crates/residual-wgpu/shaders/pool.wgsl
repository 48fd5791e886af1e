// 2-D pooling over planes, x: [planes, h, w] -> y: [planes, oh, ow].
// Forward: one thread per output. Backward: one thread per input element,
// gathering from every window that covers it (no atomics, fixed order).
//
// MODE: 0 max (the last NaN wins, else the first maximum, as PyTorch), 1 average (PyTorch's divisor
// with count_include_pad), 2 adaptive average (window i spans
// floor(i*len/out) .. ceil((i+1)*len/out)).

// Mirrors residual_wgpu::contract::pool::PoolParams.
struct PoolParams {
    planes: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    count_include_pad: u32,
}

override MODE: u32 = 0u;

@group(0) @binding(0) var<uniform> params: PoolParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

struct Span {
    lo: u32,
    hi: u32,
    padded: u32,
}

// Window o along one axis, clipped to [0, len), and its length with padding.
fn span(o: u32, k: u32, s: u32, pad: u32, len: u32, out: u32) -> Span {
    if (MODE == 2u) {
        return Span(o * len / out, ((o + 1u) * len + out - 1u) / out, 0u);
    }
    let start = i32(o * s) - i32(pad);
    let end_padded = min(start + i32(k), i32(len + pad));
    let lo = u32(max(start, 0));
    let hi = max(u32(max(min(end_padded, i32(len)), 0)), lo);
    return Span(lo, hi, u32(end_padded - start));
}

fn span_y(oy: u32) -> Span {
    return span(oy, params.kh, params.sh, params.ph, params.h, params.oh);
}

fn span_x(ox: u32) -> Span {
    return span(ox, params.kw, params.sw, params.pw, params.w, params.ow);
}

fn divisor(sy: Span, sx: Span) -> f32 {
    if (MODE == 1u && params.count_include_pad != 0u) {
        return f32(sy.padded * sx.padded);
    }
    return f32((sy.hi - sy.lo) * (sx.hi - sx.lo));
}

// NaN test on the bits: a compiler may fold `v != v` to false (WGSL lets it
// assume there are no NaNs in float arithmetic; lavapipe does), never an
// integer comparison.
fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

// Flat index (within the plane) of the window's last NaN, else of its first
// maximum (as PyTorch's max_pool2d); h*w when empty.
fn window_argmax(base: u32, sy: Span, sx: Span) -> u32 {
    let w = params.w;
    var best = params.h * w;
    var best_v = 0.0;
    for (var iy = sy.lo; iy < sy.hi; iy = iy + 1u) {
        for (var ix = sx.lo; ix < sx.hi; ix = ix + 1u) {
            let v = x[base + iy * w + ix];
            if (best == params.h * w || is_nan(v) || (!is_nan(best_v) && v > best_v)) {
                best = iy * w + ix;
                best_v = v;
            }
        }
    }
    return best;
}

// y: [planes, oh, ow]
@compute @workgroup_size(256)
fn pool_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    let h = params.h;
    let w = params.w;
    let oh = params.oh;
    let ow = params.ow;
    if (i >= params.planes * oh * ow) {
        return;
    }
    let plane = i / (oh * ow);
    let oy = (i / ow) % oh;
    let ox = i % ow;
    let base = plane * h * w;
    let sy = span_y(oy);
    let sx = span_x(ox);
    if (MODE == 0u) {
        let at = window_argmax(base, sy, sx);
        y[i] = select(x[base + at], bitcast<f32>(0xff800000u), at == h * w);
        return;
    }
    var s = 0.0;
    for (var iy = sy.lo; iy < sy.hi; iy = iy + 1u) {
        for (var ix = sx.lo; ix < sx.hi; ix = ix + 1u) {
            s = s + x[base + iy * w + ix];
        }
    }
    let d = divisor(sy, sx);
    y[i] = select(0.0, s / d, d > 0.0);
}

// Range of output positions whose windows may cover input position `pos`.
fn candidates(pos: u32, k: u32, s: u32, pad: u32, out: u32) -> vec2<u32> {
    if (MODE == 2u) {
        return vec2<u32>(0u, out);
    }
    let first = i32(pos + pad + 1u) - i32(k);
    let lo = select(0u, u32((first + i32(s) - 1) / i32(s)), first > 0);
    let hi = min(out, (pos + pad) / s + 1u);
    return vec2<u32>(lo, hi);
}

// dx: [planes, h, w]; MODE 0 reads x to find each window's maximum.
@compute @workgroup_size(256)
fn pool_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    let h = params.h;
    let w = params.w;
    let oh = params.oh;
    let ow = params.ow;
    if (i >= params.planes * h * w) {
        return;
    }
    let plane = i / (h * w);
    let iy = (i / w) % h;
    let ix = i % w;
    let cy = candidates(iy, params.kh, params.sh, params.ph, oh);
    let cx = candidates(ix, params.kw, params.sw, params.pw, ow);
    var g = 0.0;
    for (var oy = cy.x; oy < cy.y; oy = oy + 1u) {
        let sy = span_y(oy);
        if (iy < sy.lo || iy >= sy.hi) {
            continue;
        }
        for (var ox = cx.x; ox < cx.y; ox = ox + 1u) {
            let sx = span_x(ox);
            if (ix < sx.lo || ix >= sx.hi) {
                continue;
            }
            let grad = dy[(plane * oh + oy) * ow + ox];
            if (MODE == 0u) {
                if (window_argmax(plane * h * w, sy, sx) == iy * w + ix) {
                    g = g + grad;
                }
            } else {
                let d = divisor(sy, sx);
                if (d > 0.0) {
                    g = g + grad / d;
                }
            }
        }
    }
    dx[i] = g;
}
