// Fused optimizer updates, one thread per parameter element, in PyTorch's
// order of operations (torch.optim.SGD, torch.optim.AdamW).
//
// The parameter structs mirror residual_wgpu::contract::optim; each entry
// point reads one of them, both at binding 0.
// step_size = lr / (1 - beta1^t), bc2_sqrt = sqrt(1 - beta2^t).

struct SgdParams {
    n: u32,
    lr: f32,
    momentum: f32,
    dampening: f32,
    weight_decay: f32,
    nesterov: u32,
    first: u32,
    _pad0: u32,
}

struct AdamWParams {
    n: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    step_size: f32,
    bc2_sqrt: f32,
}

@group(0) @binding(0) var<uniform> sgd_params: SgdParams;
@group(0) @binding(0) var<uniform> adamw_params: AdamWParams;
@group(0) @binding(1) var<storage, read> p: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> p_out: array<f32>;
@group(0) @binding(4) var<storage, read> buf: array<f32>;
@group(0) @binding(5) var<storage, read_write> buf_out: array<f32>;
@group(0) @binding(6) var<storage, read> m: array<f32>;
@group(0) @binding(7) var<storage, read> v: array<f32>;
@group(0) @binding(8) var<storage, read_write> m_out: array<f32>;
@group(0) @binding(9) var<storage, read_write> v_out: array<f32>;

fn index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid;
}

// p_out = p - lr (g + wd p)
@compute @workgroup_size(256)
fn sgd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    if (i >= sgd_params.n) {
        return;
    }
    let d = g[i] + sgd_params.weight_decay * p[i];
    p_out[i] = p[i] - sgd_params.lr * d;
}

// d = g + wd p; buf = d (first step) or momentum buf + (1 - dampening) d;
// p_out = p - lr (d + momentum buf) (Nesterov) or p - lr buf
@compute @workgroup_size(256)
fn sgd_momentum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    if (i >= sgd_params.n) {
        return;
    }
    let momentum = sgd_params.momentum;
    let d = g[i] + sgd_params.weight_decay * p[i];
    var b = d;
    if (sgd_params.first == 0u) {
        b = momentum * buf[i] + (1.0 - sgd_params.dampening) * d;
    }
    buf_out[i] = b;
    let step = select(b, d + momentum * b, sgd_params.nesterov != 0u);
    p_out[i] = p[i] - sgd_params.lr * step;
}

// p = p (1 - lr wd); m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// p = p - step_size m / (sqrt(v) / bc2_sqrt + eps)
@compute @workgroup_size(256)
fn adamw(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    if (i >= adamw_params.n) {
        return;
    }
    let lr = adamw_params.lr;
    let b1 = adamw_params.beta1;
    let b2 = adamw_params.beta2;
    let gi = g[i];
    let decayed = p[i] * (1.0 - lr * adamw_params.weight_decay);
    let mi = b1 * m[i] + (1.0 - b1) * gi;
    let vi = b2 * v[i] + (1.0 - b2) * gi * gi;
    let denom = sqrt(vi) / adamw_params.bc2_sqrt + adamw_params.eps;
    p_out[i] = decayed - adamw_params.step_size * mi / denom;
    m_out[i] = mi;
    v_out[i] = vi;
}
