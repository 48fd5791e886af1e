// Tiled matrix products: C[z] (M x N) = A[z] (M x K) * B[z] (K x N).
//
// One workgroup of 8x8 threads computes a 64x64 tile of C; each thread
// holds an 8x8 block of accumulators in registers (rows ty + 8i, columns
// tx + 8j) and the workgroup steps through K in slices of 16, staged in
// workgroup memory. (On lavapipe 8x8 blocks ran 1.3x faster than 4x4 blocks
// of a 16x16 workgroup: fewer threads meet at each barrier.) MODE chooses how A and B are read and C written, so the
// convolutions are implicit GEMMs (no im2col buffer):
//
//   MODE 0, matmul:         A = a[z] or a[z]^T, B = b[z] or b[z]^T, C = c[z]
//   MODE 1, conv forward:   per group z, A = w: [cout_g, cin_g*kh*kw],
//                           B = im2col(x): [cin_g*kh*kw, n*oh*ow],
//                           C -> y: [n, c_out, oh, ow] (+ bias, + residual, relu)
//   MODE 2, conv dx:        A = w^T: [cin_g, cout_g*kh*kw],
//                           B = col(dy): [cout_g*kh*kw, n*h*w], C -> dx: [n, c_in, h, w]
//   MODE 3, conv dw:        A = dy: [cout_g, n*oh*ow], B = im2col(x)^T: [n*oh*ow, cin_g*kh*kw],
//                           C -> dw: [c_out, cin_g, kh, kw]
//
// Mirrors residual_wgpu::contract::gemm::GemmParams: the product's sizes,
// the matmul flags, the convolution's geometry (zero for a matmul; batch is
// the number of images) and the conv epilogue's flags.
struct GemmParams {
    m: u32, n: u32, k: u32,
    trans_a: u32, trans_b: u32, a_shared: u32, b_shared: u32,
    batch: u32, c_in: u32, h: u32, w: u32, c_out: u32,
    kh: u32, kw: u32, oh: u32, ow: u32,
    sh: u32, sw: u32, pt: u32, pl: u32, dh: u32, dw: u32,
    cin_g: u32, cout_g: u32,
    has_bias: u32, has_residual: u32, relu: u32,
    _pad0: u32,
}

override MODE: u32 = 0u;

@group(0) @binding(0) var<uniform> params: GemmParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> residual: array<f32>;

const TILE: u32 = 64u;
const SLICE: u32 = 16u;

var<workgroup> tile_a: array<array<f32, 64>, 16>;
var<workgroup> tile_b: array<array<f32, 64>, 16>;

struct Geometry {
    m: u32, n: u32, k: u32,
    batch: u32, c_in: u32, h: u32, w: u32, c_out: u32,
    kh: u32, kw: u32, oh: u32, ow: u32,
    sh: u32, sw: u32, pt: i32, pl: i32, dh: u32, dw: u32,
    cin_g: u32, cout_g: u32,
}

// NaN test on the bits: a compiler may fold `v != v` to false (WGSL lets it
// assume there are no NaNs in float arithmetic; lavapipe does), never an
// integer comparison.
fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

fn geometry() -> Geometry {
    return Geometry(params.m, params.n, params.k,
        params.batch, params.c_in, params.h, params.w, params.c_out,
        params.kh, params.kw, params.oh, params.ow,
        params.sh, params.sw, i32(params.pt), i32(params.pl), params.dh, params.dw,
        params.cin_g, params.cout_g);
}

// x[nb, ci, oy*sh + ki*dh - pt, ox*sw + kj*dw - pl], zero in the padding.
fn input_at(g: Geometry, nb: u32, ci: u32, oy: u32, ox: u32, ki: u32, kj: u32) -> f32 {
    let iy = i32(oy * g.sh + ki * g.dh) - g.pt;
    let ix = i32(ox * g.sw + kj * g.dw) - g.pl;
    if (iy < 0 || ix < 0 || iy >= i32(g.h) || ix >= i32(g.w)) {
        return 0.0;
    }
    return b[((nb * g.c_in + ci) * g.h + u32(iy)) * g.w + u32(ix)];
}

fn load_a(g: Geometry, z: u32, row: u32, col: u32) -> f32 {
    if (row >= g.m || col >= g.k) {
        return 0.0;
    }
    switch MODE {
        case 0u: {
            let base = select(z * g.m * g.k, 0u, params.a_shared != 0u);
            if (params.trans_a != 0u) {
                return a[base + col * g.m + row];
            }
            return a[base + row * g.k + col];
        }
        case 1u: {
            // w[z*cout_g + row, col]
            return a[(z * g.cout_g + row) * g.k + col];
        }
        case 2u: {
            // w[z*cout_g + co, row, ki, kj] with col = (co, ki, kj)
            let taps = g.kh * g.kw;
            let co = col / taps;
            let tap = col % taps;
            return a[((z * g.cout_g + co) * g.cin_g + row) * taps + tap];
        }
        default: {
            // dy[nb, z*cout_g + row, oy, ox] with col = (nb, oy, ox)
            let plane = g.oh * g.ow;
            let nb = col / plane;
            let p = col % plane;
            return a[(nb * g.c_out + z * g.cout_g + row) * plane + p];
        }
    }
}

fn load_b(g: Geometry, z: u32, row: u32, col: u32) -> f32 {
    if (row >= g.k || col >= g.n) {
        return 0.0;
    }
    switch MODE {
        case 0u: {
            let base = select(z * g.k * g.n, 0u, params.b_shared != 0u);
            if (params.trans_b != 0u) {
                return b[base + col * g.k + row];
            }
            return b[base + row * g.n + col];
        }
        case 1u: {
            // row = (ci, ki, kj), col = (nb, oy, ox)
            let taps = g.kh * g.kw;
            let ci = row / taps;
            let tap = row % taps;
            let plane = g.oh * g.ow;
            let nb = col / plane;
            let p = col % plane;
            return input_at(g, nb, z * g.cin_g + ci, p / g.ow, p % g.ow, tap / g.kw, tap % g.kw);
        }
        case 2u: {
            // row = (co, ki, kj), col = (nb, iy, ix): dy[nb, co, oy, ox] where
            // oy*sh + ki*dh - pt = iy, when such an output position exists.
            let taps = g.kh * g.kw;
            let co = row / taps;
            let tap = row % taps;
            let plane = g.h * g.w;
            let nb = col / plane;
            let p = col % plane;
            let ty = i32(p / g.w) + g.pt - i32((tap / g.kw) * g.dh);
            let tx = i32(p % g.w) + g.pl - i32((tap % g.kw) * g.dw);
            if (ty < 0 || tx < 0) {
                return 0.0;
            }
            let uy = u32(ty);
            let ux = u32(tx);
            if (uy % g.sh != 0u || ux % g.sw != 0u) {
                return 0.0;
            }
            let oy = uy / g.sh;
            let ox = ux / g.sw;
            if (oy >= g.oh || ox >= g.ow) {
                return 0.0;
            }
            return b[((nb * g.c_out + z * g.cout_g + co) * g.oh + oy) * g.ow + ox];
        }
        default: {
            // row = (nb, oy, ox), col = (ci, ki, kj)
            let plane = g.oh * g.ow;
            let nb = row / plane;
            let p = row % plane;
            let taps = g.kh * g.kw;
            let ci = col / taps;
            let tap = col % taps;
            return input_at(g, nb, z * g.cin_g + ci, p / g.ow, p % g.ow, tap / g.kw, tap % g.kw);
        }
    }
}

fn store(g: Geometry, z: u32, row: u32, col: u32, v: f32) {
    if (row >= g.m || col >= g.n) {
        return;
    }
    switch MODE {
        case 0u: {
            c[(z * g.m + row) * g.n + col] = v;
        }
        case 1u: {
            let plane = g.oh * g.ow;
            let nb = col / plane;
            let p = col % plane;
            let channel = z * g.cout_g + row;
            let at = (nb * g.c_out + channel) * plane + p;
            var r = v;
            if (params.has_bias != 0u) {
                r = r + bias[channel];
            }
            if (params.has_residual != 0u) {
                r = r + residual[at];
            }
            if (params.relu != 0u) {
                // ReLU that keeps NaN (WGSL's max may drop it).
                r = select(max(r, 0.0), r, is_nan(r));
            }
            c[at] = r;
        }
        case 2u: {
            let plane = g.h * g.w;
            let nb = col / plane;
            let p = col % plane;
            c[(nb * g.c_in + z * g.cin_g + row) * plane + p] = v;
        }
        default: {
            c[(z * g.cout_g + row) * g.n + col] = v;
        }
    }
}

@compute @workgroup_size(8, 8)
fn gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let g = geometry();
    let z = wid.z;
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    let tx = lid3.x;
    let ty = lid3.y;
    var acc: array<array<f32, 8>, 8>;
    for (var i = 0u; i < 8u; i = i + 1u) {
        for (var j = 0u; j < 8u; j = j + 1u) {
            acc[i][j] = 0.0;
        }
    }
    for (var k0 = 0u; k0 < g.k; k0 = k0 + SLICE) {
        for (var e = 0u; e < 16u; e = e + 1u) {
            let idx = lid + 64u * e;
            // A slice: 64 rows x 16 columns; consecutive threads walk k.
            let ak = idx % SLICE;
            let am = idx / SLICE;
            tile_a[ak][am] = load_a(g, z, row0 + am, k0 + ak);
            // B slice: 16 rows x 64 columns; consecutive threads walk n.
            let bn = idx % TILE;
            let bk = idx / TILE;
            tile_b[bk][bn] = load_b(g, z, k0 + bk, col0 + bn);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < SLICE; kk = kk + 1u) {
            var ra: array<f32, 8>;
            var rb: array<f32, 8>;
            for (var i = 0u; i < 8u; i = i + 1u) {
                ra[i] = tile_a[kk][ty + 8u * i];
                rb[i] = tile_b[kk][tx + 8u * i];
            }
            for (var i = 0u; i < 8u; i = i + 1u) {
                for (var j = 0u; j < 8u; j = j + 1u) {
                    acc[i][j] = fma(ra[i], rb[j], acc[i][j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 8u; i = i + 1u) {
        for (var j = 0u; j < 8u; j = j + 1u) {
            store(g, z, row0 + ty + 8u * i, col0 + tx + 8u * j, acc[i][j]);
        }
    }
}
