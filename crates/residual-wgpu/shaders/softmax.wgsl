// Softmax along an axis of x: [outer, len, inner], and the mean cross-entropy
// of logits: [n, c] against class targets with label smoothing.
//
// LOG: 0 softmax, 1 log-softmax.
// softmax*: one thread per (outer, inner).
// cross_entropy*: logits x: [n, c], targets: [n].
// The parameter structs mirror residual_wgpu::contract::softmax; each entry
// point reads one of them, both at binding 0.

struct AxisParams {
    outer: u32,
    len: u32,
    inner: u32,
    _pad0: u32,
}

struct CrossEntropyParams {
    n: u32,
    c: u32,
    smoothing: f32,
    _pad0: u32,
}

override LOG: u32 = 0u;

@group(0) @binding(0) var<uniform> axis_params: AxisParams;
@group(0) @binding(0) var<uniform> ce_params: CrossEntropyParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> y_in: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<storage, read> dloss: array<f32>;
@group(0) @binding(7) var<storage, read> targets: array<u32>;

var<workgroup> partial: array<f32, 256>;

fn index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid;
}

// y = softmax(x) or log_softmax(x) along len
@compute @workgroup_size(256)
fn softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let t = index(wid, nwg, lid);
    let len = axis_params.len;
    let inner = axis_params.inner;
    if (t >= axis_params.outer * inner) {
        return;
    }
    let base = (t / inner) * len * inner + t % inner;
    var mx = bitcast<f32>(0xff800000u);
    for (var j = 0u; j < len; j = j + 1u) {
        mx = max(mx, x[base + j * inner]);
    }
    var s = 0.0;
    for (var j = 0u; j < len; j = j + 1u) {
        s = s + exp(x[base + j * inner] - mx);
    }
    let lse = log(s);
    for (var j = 0u; j < len; j = j + 1u) {
        let v = x[base + j * inner] - mx;
        y[base + j * inner] = select(exp(v) / s, v - lse, LOG == 1u);
    }
}

// softmax: dx = y (dy - sum(dy y)); log-softmax: dx = dy - exp(y) sum(dy)
@compute @workgroup_size(256)
fn softmax_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let t = index(wid, nwg, lid);
    let len = axis_params.len;
    let inner = axis_params.inner;
    if (t >= axis_params.outer * inner) {
        return;
    }
    let base = (t / inner) * len * inner + t % inner;
    var s = 0.0;
    for (var j = 0u; j < len; j = j + 1u) {
        let at = base + j * inner;
        s = s + select(dy[at] * y_in[at], dy[at], LOG == 1u);
    }
    for (var j = 0u; j < len; j = j + 1u) {
        let at = base + j * inner;
        dx[at] = select(y_in[at] * (dy[at] - s), dy[at] - exp(y_in[at]) * s, LOG == 1u);
    }
}

// Loss of row i: (1 - eps) (lse - x[t]) + eps (lse - mean(x)).
fn row_loss(i: u32) -> f32 {
    let c = ce_params.c;
    let eps = ce_params.smoothing;
    let base = i * c;
    var mx = bitcast<f32>(0xff800000u);
    for (var j = 0u; j < c; j = j + 1u) {
        mx = max(mx, x[base + j]);
    }
    var s = 0.0;
    var total = 0.0;
    for (var j = 0u; j < c; j = j + 1u) {
        s = s + exp(x[base + j] - mx);
        total = total + x[base + j];
    }
    let lse = mx + log(s);
    let nll = lse - x[base + targets[i]];
    let smoothed = lse - total / f32(c);
    // Not `nll + 0 * smoothed` when eps is 0: a -Inf logit off the target
    // makes `smoothed` infinite, and the plain loss stays finite.
    return select((1.0 - eps) * nll + eps * smoothed, nll, eps == 0.0);
}

// y: [1] = mean over rows of the loss; one workgroup, rows summed in a fixed tree.
@compute @workgroup_size(256)
fn cross_entropy(@builtin(local_invocation_index) lid: u32) {
    let n = ce_params.n;
    var acc = 0.0;
    for (var i = lid; i < n; i = i + 256u) {
        acc = acc + row_loss(i);
    }
    partial[lid] = acc;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            partial[lid] = partial[lid] + partial[lid + s];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        y[0] = partial[0] / f32(n);
    }
}

// dx: [n, c] = dloss / n * (softmax(x) - ((1 - eps) onehot + eps / c)); one thread per row.
@compute @workgroup_size(256)
fn cross_entropy_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    let n = ce_params.n;
    if (i >= n) {
        return;
    }
    let c = ce_params.c;
    let eps = ce_params.smoothing;
    let target_class = targets[i];
    let k = dloss[0] / f32(n);
    let base = i * c;
    var mx = bitcast<f32>(0xff800000u);
    for (var j = 0u; j < c; j = j + 1u) {
        mx = max(mx, x[base + j]);
    }
    var s = 0.0;
    for (var j = 0u; j < c; j = j + 1u) {
        s = s + exp(x[base + j] - mx);
    }
    for (var j = 0u; j < c; j = j + 1u) {
        let want = select(0.0, 1.0 - eps, j == target_class) + eps / f32(c);
        dx[base + j] = k * (exp(x[base + j] - mx) / s - want);
    }
}
