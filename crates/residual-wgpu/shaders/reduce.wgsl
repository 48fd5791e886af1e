// Reductions. `reduce`: one workgroup of 64 threads per output element; the
// threads stride over the reduced elements and combine in a fixed tree, so
// the result is the same on every run. `argmax`: one thread per (outer, inner).
//
// OP: 0 sum, 1 max.
// The parameter structs mirror residual_wgpu::contract::reduce; each entry
// point reads one of them, both at binding 0.

// reduce; shape: [kept_dims[kept_rank], kept_strides[kept_rank],
//                 red_dims[red_rank], red_strides[red_rank]]
struct ReduceParams {
    n_out: u32,
    kept_rank: u32,
    red_rank: u32,
    count: u32,
}

// argmax
struct ArgmaxParams {
    outer: u32,
    len: u32,
    inner: u32,
    _pad0: u32,
}

override OP: u32 = 0u;

@group(0) @binding(0) var<uniform> reduce_params: ReduceParams;
@group(0) @binding(0) var<uniform> argmax_params: ArgmaxParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> indices: array<u32>;
@group(0) @binding(4) var<storage, read> shape: array<u32>;

var<workgroup> partial: array<f32, 64>;

// NaN test on the bits: a compiler may fold `v != v` to false (WGSL lets it
// assume there are no NaNs in float arithmetic; lavapipe does), never an
// integer comparison.
fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

fn combine(u: f32, v: f32) -> f32 {
    if (OP == 0u) {
        return u + v;
    }
    // max, NaN wins (as PyTorch)
    if (is_nan(u) || is_nan(v)) {
        return bitcast<f32>(0x7fc00000u);
    }
    return max(u, v);
}

fn identity() -> f32 {
    return select(0.0, bitcast<f32>(0xff800000u), OP == 1u);
}

// Offset of the linear index `i` over `rank` dims starting at shape[at]
// (dims), with strides at shape[at + rank].
fn offset(i: u32, rank: u32, at: u32) -> u32 {
    var rest = i;
    var off = 0u;
    for (var d = rank; d > 0u; d = d - 1u) {
        let dim = shape[at + d - 1u];
        off = off + (rest % dim) * shape[at + rank + d - 1u];
        rest = rest / dim;
    }
    return off;
}

// y: [n_out] = reduce over the red dims of x
@compute @workgroup_size(64)
fn reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let o = wid.y * nwg.x + wid.x;
    let n_out = reduce_params.n_out;
    let kept_rank = reduce_params.kept_rank;
    let red_rank = reduce_params.red_rank;
    let count = reduce_params.count;
    var acc = identity();
    if (o < n_out) {
        let base = offset(o, kept_rank, 0u);
        let red_at = 2u * kept_rank;
        for (var r = lid; r < count; r = r + 64u) {
            acc = combine(acc, x[base + offset(r, red_rank, red_at)]);
        }
    }
    partial[lid] = acc;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            partial[lid] = combine(partial[lid], partial[lid + s]);
        }
        workgroupBarrier();
    }
    if (lid == 0u && o < n_out) {
        y[o] = partial[0];
    }
}

// indices: [outer * inner] = index of the first NaN of x: [outer, len, inner]
// along len, else of the first maximum (as PyTorch's argmax)
@compute @workgroup_size(256)
fn argmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let t = (wid.y * nwg.x + wid.x) * 256u + lid;
    let outer = argmax_params.outer;
    let len = argmax_params.len;
    let inner = argmax_params.inner;
    if (t >= outer * inner) {
        return;
    }
    let o = t / inner;
    let i = t % inner;
    var best = 0u;
    var best_v = x[o * len * inner + i];
    for (var j = 1u; j < len; j = j + 1u) {
        let v = x[(o * len + j) * inner + i];
        if (!is_nan(best_v) && (is_nan(v) || v > best_v)) {
            best = j;
            best_v = v;
        }
    }
    indices[t] = best;
}
