// Fused optimizer updates, one thread per parameter element, in PyTorch's
// order of operations (torch.optim.SGD, torch.optim.AdamW).
//
// sgd / sgd_momentum params: [n, lr, momentum, dampening, weight_decay, nesterov, first]
// adamw params: [n, lr, beta1, beta2, eps, weight_decay, step_size, bc2_sqrt]
// (floats as bits; step_size = lr / (1 - beta1^t), bc2_sqrt = sqrt(1 - beta2^t))

@group(0) @binding(0) var<storage, read> params: array<u32>;
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

fn f(i: u32) -> f32 {
    return bitcast<f32>(params[i]);
}

// p_out = p - lr (g + wd p)
@compute @workgroup_size(256)
fn sgd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    if (i >= params[0]) {
        return;
    }
    let d = g[i] + f(4u) * p[i];
    p_out[i] = p[i] - f(1u) * d;
}

// d = g + wd p; buf = d (first step) or momentum buf + (1 - dampening) d;
// p_out = p - lr (d + momentum buf) (Nesterov) or p - lr buf
@compute @workgroup_size(256)
fn sgd_momentum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    if (i >= params[0]) {
        return;
    }
    let momentum = f(2u);
    let d = g[i] + f(4u) * p[i];
    var b = d;
    if (params[6] == 0u) {
        b = momentum * buf[i] + (1.0 - f(3u)) * d;
    }
    buf_out[i] = b;
    let step = select(b, d + momentum * b, params[5] != 0u);
    p_out[i] = p[i] - f(1u) * step;
}

// p = p (1 - lr wd); m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// p = p - step_size m / (sqrt(v) / bc2_sqrt + eps)
@compute @workgroup_size(256)
fn adamw(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    if (i >= params[0]) {
        return;
    }
    let lr = f(1u);
    let b1 = f(2u);
    let b2 = f(3u);
    let gi = g[i];
    let decayed = p[i] * (1.0 - lr * f(5u));
    let mi = b1 * m[i] + (1.0 - b1) * gi;
    let vi = b2 * v[i] + (1.0 - b2) * gi * gi;
    let denom = sqrt(vi) / f(7u) + f(4u);
    p_out[i] = decayed - f(6u) * mi / denom;
    m_out[i] = mi;
    v_out[i] = vi;
}
