// Data movement: strided gathers (permute, slice, broadcast), concatenation,
// index_select and its backward. One thread per output element.
//
// The parameter structs mirror residual_wgpu::contract::layout; each entry
// point reads one of them, all at binding 0.

// strided_copy; shape: [dims[rank], strides[rank]]
struct CopyParams {
    n: u32,
    rank: u32,
    offset: u32,
    _pad0: u32,
}

// copy_block: one concat part
struct BlockParams {
    outer: u32,
    len: u32,
    inner: u32,
    total_len: u32,
    at: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// index_select, index_add; positions: index[count]
struct IndexParams {
    outer: u32,
    len: u32,
    inner: u32,
    count: u32,
}

@group(0) @binding(0) var<uniform> copy_params: CopyParams;
@group(0) @binding(0) var<uniform> block_params: BlockParams;
@group(0) @binding(0) var<uniform> index_params: IndexParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> shape: array<u32>;
@group(0) @binding(4) var<storage, read> positions: array<u32>;

fn index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid;
}

// y: dims = x[offset + sum(i_d * strides[d])]
@compute @workgroup_size(256)
fn strided_copy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    if (i >= copy_params.n) {
        return;
    }
    let rank = copy_params.rank;
    var rest = i;
    var src = copy_params.offset;
    for (var d = rank; d > 0u; d = d - 1u) {
        let dim = shape[d - 1u];
        src = src + (rest % dim) * shape[rank + d - 1u];
        rest = rest / dim;
    }
    y[i] = x[src];
}

// y: [outer, total_len, inner][:, at..at+len, :] = x: [outer, len, inner]
@compute @workgroup_size(256)
fn copy_block(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    let outer = block_params.outer;
    let len = block_params.len;
    let inner = block_params.inner;
    if (i >= outer * len * inner) {
        return;
    }
    let o = i / (len * inner);
    let rest = i % (len * inner);
    y[(o * block_params.total_len + block_params.at) * inner + rest] = x[i];
}

// y: [outer, count, inner] = x: [outer, len, inner][:, index, :]
@compute @workgroup_size(256)
fn index_select(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    let outer = index_params.outer;
    let len = index_params.len;
    let inner = index_params.inner;
    let count = index_params.count;
    if (i >= outer * count * inner) {
        return;
    }
    let o = i / (count * inner);
    let j = (i / inner) % count;
    let e = i % inner;
    y[i] = x[(o * len + positions[j]) * inner + e];
}

// y: [outer, len, inner] with y[:, r, :] = sum of x: [outer, count, inner][:, j, :]
// over j with index[j] = r (a gather per output: no atomics, fixed order).
@compute @workgroup_size(256)
fn index_add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    let outer = index_params.outer;
    let len = index_params.len;
    let inner = index_params.inner;
    let count = index_params.count;
    if (i >= outer * len * inner) {
        return;
    }
    let o = i / (len * inner);
    let r = (i / inner) % len;
    let e = i % inner;
    var s = 0.0;
    for (var j = 0u; j < count; j = j + 1u) {
        if (positions[j] == r) {
            s = s + x[(o * count + j) * inner + e];
        }
    }
    y[i] = s;
}
