// Data movement: strided gathers (permute, slice, broadcast), concatenation,
// index_select and its backward. One thread per output element.
//
// strided_copy params: [n, rank, offset, dims[rank], strides[rank]]
// copy_block params:   [outer, len, inner, total_len, at]   (one concat part)
// index_select params: [outer, len, inner, count, index[count]]
// index_add params:    [outer, len, inner, count, index[count]]

@group(0) @binding(0) var<storage, read> params: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

fn index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid;
}

// y: dims = x[offset + sum(i_d * strides[d])]
@compute @workgroup_size(256)
fn strided_copy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    if (i >= params[0]) {
        return;
    }
    let rank = params[1];
    var rest = i;
    var src = params[2];
    for (var d = rank; d > 0u; d = d - 1u) {
        let dim = params[2u + d];
        src = src + (rest % dim) * params[2u + rank + d];
        rest = rest / dim;
    }
    y[i] = x[src];
}

// y: [outer, total_len, inner][:, at..at+len, :] = x: [outer, len, inner]
@compute @workgroup_size(256)
fn copy_block(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    let outer = params[0];
    let len = params[1];
    let inner = params[2];
    if (i >= outer * len * inner) {
        return;
    }
    let o = i / (len * inner);
    let rest = i % (len * inner);
    y[(o * params[3] + params[4]) * inner + rest] = x[i];
}

// y: [outer, count, inner] = x: [outer, len, inner][:, index, :]
@compute @workgroup_size(256)
fn index_select(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    let outer = params[0];
    let len = params[1];
    let inner = params[2];
    let count = params[3];
    if (i >= outer * count * inner) {
        return;
    }
    let o = i / (count * inner);
    let j = (i / inner) % count;
    let e = i % inner;
    y[i] = x[(o * len + params[4u + j]) * inner + e];
}

// y: [outer, len, inner] with y[:, r, :] = sum of x: [outer, count, inner][:, j, :]
// over j with index[j] = r (a gather per output: no atomics, fixed order).
@compute @workgroup_size(256)
fn index_add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    let outer = params[0];
    let len = params[1];
    let inner = params[2];
    let count = params[3];
    if (i >= outer * len * inner) {
        return;
    }
    let o = i / (len * inner);
    let r = (i / inner) % len;
    let e = i % inner;
    var s = 0.0;
    for (var j = 0u; j < count; j = j + 1u) {
        if (params[4u + j] == r) {
            s = s + x[(o * count + j) * inner + e];
        }
    }
    y[i] = s;
}
