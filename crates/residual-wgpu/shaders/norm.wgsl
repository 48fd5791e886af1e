// Normalisation: batch norm (statistics per channel over batch and space)
// and row norm (per row: layer norm, group norm), forward and fused backward.
// One workgroup of 256 threads per channel / row / parameter; sums combine in
// a fixed tree in workgroup memory, so results do not change between runs.
//
// batch_norm*: x: [outer, channels, inner]
// row_norm*:   x: [rows, cols]; parameter of (row r, col j) is
//              (r % groups) * cpg + j / per_channel
// The parameter structs mirror residual_wgpu::contract::norm; each entry
// point reads one of them, both at binding 0 (eps is unused by the backward).

struct BatchNormParams {
    outer: u32,
    channels: u32,
    inner: u32,
    eps: f32,
}

struct RowNormParams {
    rows: u32,
    cols: u32,
    groups: u32,
    cpg: u32,
    per_channel: u32,
    eps: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> bn_params: BatchNormParams;
@group(0) @binding(0) var<uniform> rn_params: RowNormParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> mean_out: array<f32>;
@group(0) @binding(6) var<storage, read_write> rstd_out: array<f32>;
@group(0) @binding(7) var<storage, read> dy: array<f32>;
@group(0) @binding(8) var<storage, read> mean_in: array<f32>;
@group(0) @binding(9) var<storage, read> rstd_in: array<f32>;
@group(0) @binding(10) var<storage, read_write> dx: array<f32>;
@group(0) @binding(11) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(12) var<storage, read_write> dbeta: array<f32>;

var<workgroup> scratch: array<vec2<f32>, 256>;

// Sums `v` over the workgroup (two values at once); every thread gets the total.
fn workgroup_sum(v: vec2<f32>, lid: u32) -> vec2<f32> {
    scratch[lid] = v;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            scratch[lid] = scratch[lid] + scratch[lid + s];
        }
        workgroupBarrier();
    }
    let total = scratch[0];
    workgroupBarrier();
    return total;
}

fn group_id(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.y * nwg.x + wid.x;
}

// Element e of channel c in [outer, channels, inner].
fn bn_at(e: u32, c: u32) -> u32 {
    let inner = bn_params.inner;
    return ((e / inner) * bn_params.channels + c) * inner + e % inner;
}

// y = (x - mean) * rstd * gamma[c] + beta[c]; mean, rstd: [channels]
@compute @workgroup_size(256)
fn batch_norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let c = group_id(wid, nwg);
    let in_range = c < bn_params.channels;
    let m = bn_params.outer * bn_params.inner;
    var s = vec2<f32>(0.0);
    if (in_range) {
        for (var e = lid; e < m; e = e + 256u) {
            s.x = s.x + x[bn_at(e, c)];
        }
    }
    let mean = workgroup_sum(s, lid).x / f32(m);
    var q = vec2<f32>(0.0);
    if (in_range) {
        for (var e = lid; e < m; e = e + 256u) {
            let d = x[bn_at(e, c)] - mean;
            q.x = q.x + d * d;
        }
    }
    let rstd = 1.0 / sqrt(workgroup_sum(q, lid).x / f32(m) + bn_params.eps);
    if (!in_range) {
        return;
    }
    let scale = gamma[c] * rstd;
    let shift = beta[c] - mean * scale;
    for (var e = lid; e < m; e = e + 256u) {
        let at = bn_at(e, c);
        y[at] = x[at] * scale + shift;
    }
    if (lid == 0u) {
        mean_out[c] = mean;
        rstd_out[c] = rstd;
    }
}

// dx = gamma rstd / m * (m dy - sum(dy) - xhat sum(dy xhat)); dgamma = sum(dy xhat); dbeta = sum(dy)
@compute @workgroup_size(256)
fn batch_norm_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) lid: u32) {
    let c = group_id(wid, nwg);
    let in_range = c < bn_params.channels;
    let m = bn_params.outer * bn_params.inner;
    var mu = 0.0;
    var r = 0.0;
    if (in_range) {
        mu = mean_in[c];
        r = rstd_in[c];
    }
    var s = vec2<f32>(0.0);
    if (in_range) {
        for (var e = lid; e < m; e = e + 256u) {
            let at = bn_at(e, c);
            let d = dy[at];
            s = s + vec2<f32>(d, d * (x[at] - mu) * r);
        }
    }
    let sums = workgroup_sum(s, lid);
    if (!in_range) {
        return;
    }
    let k = gamma[c] * r / f32(m);
    for (var e = lid; e < m; e = e + 256u) {
        let at = bn_at(e, c);
        let xhat = (x[at] - mu) * r;
        dx[at] = k * (f32(m) * dy[at] - sums.x - xhat * sums.y);
    }
    if (lid == 0u) {
        dgamma[c] = sums.y;
        dbeta[c] = sums.x;
    }
}

fn param_index(row: u32, col: u32) -> u32 {
    return (row % rn_params.groups) * rn_params.cpg + col / rn_params.per_channel;
}

// y: [rows, cols] normalised per row, then the affine transform; mean, rstd: [rows]
@compute @workgroup_size(256)
fn row_norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let row = group_id(wid, nwg);
    let in_range = row < rn_params.rows;
    let cols = rn_params.cols;
    let base = row * cols;
    var s = vec2<f32>(0.0);
    if (in_range) {
        for (var j = lid; j < cols; j = j + 256u) {
            s.x = s.x + x[base + j];
        }
    }
    let mean = workgroup_sum(s, lid).x / f32(cols);
    var q = vec2<f32>(0.0);
    if (in_range) {
        for (var j = lid; j < cols; j = j + 256u) {
            let d = x[base + j] - mean;
            q.x = q.x + d * d;
        }
    }
    let rstd = 1.0 / sqrt(workgroup_sum(q, lid).x / f32(cols) + rn_params.eps);
    if (!in_range) {
        return;
    }
    for (var j = lid; j < cols; j = j + 256u) {
        let p = param_index(row, j);
        y[base + j] = (x[base + j] - mean) * rstd * gamma[p] + beta[p];
    }
    if (lid == 0u) {
        mean_out[row] = mean;
        rstd_out[row] = rstd;
    }
}

// dx per row: g = dy * gamma; dx = rstd * (g - mean(g) - xhat * mean(g xhat))
@compute @workgroup_size(256)
fn row_norm_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    let row = group_id(wid, nwg);
    let in_range = row < rn_params.rows;
    let cols = rn_params.cols;
    let base = row * cols;
    var mu = 0.0;
    var r = 0.0;
    if (in_range) {
        mu = mean_in[row];
        r = rstd_in[row];
    }
    var s = vec2<f32>(0.0);
    if (in_range) {
        for (var j = lid; j < cols; j = j + 256u) {
            let g = dy[base + j] * gamma[param_index(row, j)];
            s = s + vec2<f32>(g, g * (x[base + j] - mu) * r);
        }
    }
    let sums = workgroup_sum(s, lid) / f32(cols);
    if (!in_range) {
        return;
    }
    for (var j = lid; j < cols; j = j + 256u) {
        let g = dy[base + j] * gamma[param_index(row, j)];
        let xhat = (x[base + j] - mu) * r;
        dx[base + j] = r * (g - sums.x - xhat * sums.y);
    }
}

// dgamma[p] = sum(dy xhat), dbeta[p] = sum(dy) over the elements using parameter p.
@compute @workgroup_size(256)
fn row_norm_params_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                            @builtin(local_invocation_index) lid: u32) {
    let p = group_id(wid, nwg);
    let groups = rn_params.groups;
    let cpg = rn_params.cpg;
    let per = rn_params.per_channel;
    let cols = rn_params.cols;
    let in_range = p < groups * cpg;
    let grp = p / cpg;
    let ch = p % cpg;
    let count = (rn_params.rows / groups) * per;
    var s = vec2<f32>(0.0);
    if (in_range) {
        for (var e = lid; e < count; e = e + 256u) {
            let row = grp + (e / per) * groups;
            let at = row * cols + ch * per + e % per;
            let d = dy[at];
            s = s + vec2<f32>(d, d * (x[at] - mean_in[row]) * rstd_in[row]);
        }
    }
    let sums = workgroup_sum(s, lid);
    if (in_range && lid == 0u) {
        dgamma[p] = sums.y;
        dbeta[p] = sums.x;
    }
}
