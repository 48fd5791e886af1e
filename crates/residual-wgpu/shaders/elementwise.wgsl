// Elementwise kernels over dense f32 buffers: unary functions and their
// derivatives, broadcasting binary ops, dropout. One thread per element.
//
// OP numbering (unary, unary_backward) follows residual_tensor::UnaryOp:
// 0 neg, 1 exp, 2 log, 3 sqrt, 4 rsqrt, 5 abs, 6 powf(p0), 7 add(p0),
// 8 mul(p0), 9 clamp(p0, p1), 10 relu, 11 gelu (erf), 12 silu, 13 sigmoid, 14 tanh.
// BOP numbering (binary): 0 add, 1 sub, 2 mul, 3 div.

override OP: u32 = 0u;
override BOP: u32 = 0u;

// The parameter structs mirror residual_wgpu::contract::elementwise; each
// entry point reads one of them, all at binding 0.
struct UnaryParams {
    n: u32,
    p0: f32,
    p1: f32,
    _pad0: u32,
}

// shape: [dims[rank], a_strides[rank], b_strides[rank]] (stride 0: broadcast)
struct BinaryParams {
    n: u32,
    rank: u32,
    _pad0: u32,
    _pad1: u32,
}

struct DropoutParams {
    n: u32,
    key: u32,
    p: f32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> unary_params: UnaryParams;
@group(0) @binding(0) var<uniform> binary_params: BinaryParams;
@group(0) @binding(0) var<uniform> dropout_params: DropoutParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
@group(0) @binding(5) var<storage, read> a: array<f32>;
@group(0) @binding(6) var<storage, read> b: array<f32>;
@group(0) @binding(7) var<storage, read> shape: array<u32>;

const INV_SQRT_2: f32 = 0.70710678118654752;
const INV_SQRT_2PI: f32 = 0.39894228040143268;

fn index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid;
}

fn nan() -> f32 {
    return bitcast<f32>(0x7fc00000u);
}

// NaN test on the bits: a compiler may fold `v != v` to false (WGSL lets it
// assume there are no NaNs in float arithmetic; lavapipe does), never an
// integer comparison.
fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

// max(v, 0) that keeps NaN (WGSL's max may return either operand of a NaN).
fn relu(v: f32) -> f32 {
    return select(max(v, 0.0), v, is_nan(v));
}

// min(max(v, lo), hi) that keeps NaN.
fn clamp_keep_nan(v: f32, lo: f32, hi: f32) -> f32 {
    return select(min(max(v, lo), hi), v, is_nan(v));
}

// erf with absolute error below 1.5e-7 (Abramowitz and Stegun 7.1.26).
fn erf(v: f32) -> f32 {
    let z = abs(v);
    let t = 1.0 / (1.0 + 0.3275911 * z);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let r = 1.0 - poly * exp(-z * z);
    return select(r, -r, v < 0.0);
}

fn sigmoid(v: f32) -> f32 {
    return 1.0 / (1.0 + exp(-v));
}

// tanh without overflow for large |v|.
fn tanh_safe(v: f32) -> f32 {
    let e = exp(-2.0 * abs(v));
    let r = (1.0 - e) / (1.0 + e);
    return select(r, -r, v < 0.0);
}

// x^p as PyTorch computes it: C's powf, except that p = 0.5 and p = -0.5 go
// through sqrt and 1 / sqrt (NaN at -Inf).
fn powf(v: f32, p: f32) -> f32 {
    if (p == 0.0) {
        return 1.0;
    }
    if (p == 1.0) {
        return v;
    }
    if (p == 2.0) {
        return v * v;
    }
    if (p == 3.0) {
        return v * v * v;
    }
    if (p == 0.5) {
        return sqrt(v);
    }
    if (p == -0.5) {
        return 1.0 / sqrt(v);
    }
    if (p == -1.0) {
        return 1.0 / v;
    }
    if (v == 0.0) {
        return select(0.0, bitcast<f32>(0x7f800000u), p < 0.0);
    }
    if (v > 0.0) {
        return pow(v, p);
    }
    if (floor(p) != p) {
        // A negative base to a fractional power is NaN, except -Inf: Inf^p.
        return select(nan(), pow(-v, p), bitcast<u32>(v) == 0xff800000u);
    }
    let r = pow(-v, p);
    return select(r, -r, abs(p) % 2.0 == 1.0);
}

fn apply(v: f32, p0: f32, p1: f32) -> f32 {
    switch OP {
        case 0u: { return -v; }
        case 1u: { return exp(v); }
        case 2u: { return log(v); }
        case 3u: { return sqrt(v); }
        case 4u: { return 1.0 / sqrt(v); }
        case 5u: { return abs(v); }
        case 6u: { return powf(v, p0); }
        case 7u: { return v + p0; }
        case 8u: { return v * p0; }
        case 9u: { return clamp_keep_nan(v, p0, p1); }
        case 10u: { return relu(v); }
        case 11u: { return 0.5 * v * (1.0 + erf(v * INV_SQRT_2)); }
        case 12u: { return v * sigmoid(v); }
        case 13u: { return sigmoid(v); }
        case 14u: { return tanh_safe(v); }
        default: { return nan(); }
    }
}

// f'(x), with PyTorch's conventions at kinks (relu'(0) = 0, abs'(0) = 0,
// clamp passes the gradient at its bounds; at NaN relu passes it, clamp and
// abs block it).
fn derivative(v: f32, p0: f32, p1: f32) -> f32 {
    switch OP {
        case 0u: { return -1.0; }
        case 1u: { return exp(v); }
        case 2u: { return 1.0 / v; }
        case 3u: { return 0.5 / sqrt(v); }
        case 4u: { return -0.5 / (v * sqrt(v)); }
        case 5u: { return select(select(0.0, -1.0, v < 0.0), 1.0, v > 0.0); }
        case 6u: { return select(p0 * powf(v, p0 - 1.0), 0.0, p0 == 0.0); }
        case 7u: { return 1.0; }
        case 8u: { return p0; }
        case 9u: { return select(0.0, 1.0, v >= p0 && v <= p1); }
        case 10u: { return select(0.0, 1.0, v > 0.0 || is_nan(v)); }
        case 11u: {
            let cdf = 0.5 * (1.0 + erf(v * INV_SQRT_2));
            return cdf + v * INV_SQRT_2PI * exp(-0.5 * v * v);
        }
        case 12u: {
            let s = sigmoid(v);
            return s * (1.0 + v * (1.0 - s));
        }
        case 13u: {
            let s = sigmoid(v);
            return s * (1.0 - s);
        }
        case 14u: {
            let t = tanh_safe(v);
            return 1.0 - t * t;
        }
        default: { return nan(); }
    }
}

// y: [n] = f(x: [n])
@compute @workgroup_size(256)
fn unary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    if (i < unary_params.n) {
        y[i] = apply(x[i], unary_params.p0, unary_params.p1);
    }
}

// dx: [n] = dy: [n] * f'(x: [n])
@compute @workgroup_size(256)
fn unary_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    if (i < unary_params.n) {
        dx[i] = dy[i] * derivative(x[i], unary_params.p0, unary_params.p1);
    }
}

// y: out_shape = a op b, each read through its (broadcast) strides.
@compute @workgroup_size(256)
fn binary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    if (i >= binary_params.n) {
        return;
    }
    let rank = binary_params.rank;
    var rest = i;
    var ia = 0u;
    var ib = 0u;
    for (var d = rank; d > 0u; d = d - 1u) {
        let dim = shape[d - 1u];
        let coord = rest % dim;
        rest = rest / dim;
        ia = ia + coord * shape[rank + d - 1u];
        ib = ib + coord * shape[2u * rank + d - 1u];
    }
    let u = a[ia];
    let v = b[ib];
    var r: f32;
    switch BOP {
        case 0u: { r = u + v; }
        case 1u: { r = u - v; }
        case 2u: { r = u * v; }
        default: { r = u / v; }
    }
    y[i] = r;
}

// The murmur3 32-bit finaliser (residual_tensor::rng::uniform32_at).
fn fmix32(h0: u32) -> u32 {
    var h = h0;
    h = h ^ (h >> 16u);
    h = h * 0x85ebca6bu;
    h = h ^ (h >> 13u);
    h = h * 0xc2b2ae35u;
    return h ^ (h >> 16u);
}

// y: [n] = x * keep / (1 - p), keep = uniform32_at(seed, i) >= p; the key
// (the seed's hash) comes from the host.
@compute @workgroup_size(256)
fn dropout(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    if (i >= dropout_params.n) {
        return;
    }
    let h = fmix32((i * 0x9e3779b9u) ^ dropout_params.key);
    let u = f32(h >> 8u) * (1.0 / 16777216.0);
    let keep = u >= dropout_params.p;
    y[i] = select(0.0, x[i] * dropout_params.scale, keep);
}
