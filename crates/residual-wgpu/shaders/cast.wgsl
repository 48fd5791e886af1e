// Conversions between f32 and the 16-bit storage types (f16, bf16), both
// rounding to nearest even. Halves are packed two per u32, element 2j in the
// low 16 bits of word j. One thread per output word (to-half) or per input
// word (from-half); written with integer arithmetic so that the result is
// exact on every adapter, with or without SHADER_F16.

// Mirrors residual_wgpu::contract::cast::CastParams; n: number of elements.
struct CastParams {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: CastParams;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

fn index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid;
}

// f32 bits -> f16 bits, round to nearest even, overflow to infinity.
fn f16_from_f32(f: u32) -> u32 {
    let sign = (f >> 16u) & 0x8000u;
    let exp = i32((f >> 23u) & 0xffu);
    let mant = f & 0x7fffffu;
    if (exp == 255) {
        return sign | select(0x7c00u, 0x7e00u, mant != 0u);
    }
    let e = exp - 112;
    if (e >= 31) {
        return sign | 0x7c00u;
    }
    if (e <= 0) {
        if (e < -10) {
            return sign;
        }
        let full = mant | 0x800000u;
        let shift = u32(14 - e);
        var h = full >> shift;
        let rem = full & ((1u << shift) - 1u);
        let halfway = 1u << (shift - 1u);
        if (rem > halfway || (rem == halfway && (h & 1u) == 1u)) {
            h = h + 1u;
        }
        return sign | h;
    }
    var h = (u32(e) << 10u) | (mant >> 13u);
    let rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u) == 1u)) {
        h = h + 1u;
    }
    return sign | h;
}

// f16 bits -> f32 bits (exact, subnormals included).
fn f32_from_f16(h: u32) -> u32 {
    let sign = (h & 0x8000u) << 16u;
    let exp = (h >> 10u) & 0x1fu;
    let mant = h & 0x3ffu;
    if (exp == 0u) {
        return sign | bitcast<u32>(ldexp(f32(mant), -24));
    }
    if (exp == 31u) {
        return sign | 0x7f800000u | (mant << 13u);
    }
    return sign | ((exp + 112u) << 23u) | (mant << 13u);
}

// f32 bits -> bf16 bits, round to nearest even, NaN stays NaN.
fn bf16_from_f32(f: u32) -> u32 {
    if ((f & 0x7fffffffu) > 0x7f800000u) {
        return (f >> 16u) | 0x40u;
    }
    return (f + 0x7fffu + ((f >> 16u) & 1u)) >> 16u;
}

// dst word j = the halves of src[2j], src[2j + 1] (bf16 or f16).
fn narrow(j: u32, bf16: bool) {
    let n = params.n;
    if (2u * j >= n) {
        return;
    }
    var word = select(f16_from_f32(src[2u * j]), bf16_from_f32(src[2u * j]), bf16);
    if (2u * j + 1u < n) {
        let hi = select(f16_from_f32(src[2u * j + 1u]), bf16_from_f32(src[2u * j + 1u]), bf16);
        word = word | (hi << 16u);
    }
    dst[j] = word;
}

// dst[2j], dst[2j + 1] = the f32 values of the halves in src word j.
fn widen(j: u32, bf16: bool) {
    let n = params.n;
    if (2u * j >= n) {
        return;
    }
    let word = src[j];
    dst[2u * j] = select(f32_from_f16(word & 0xffffu), word << 16u, bf16);
    if (2u * j + 1u < n) {
        dst[2u * j + 1u] = select(f32_from_f16(word >> 16u), word & 0xffff0000u, bf16);
    }
}

@compute @workgroup_size(256)
fn f32_to_f16(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    narrow(index(wid, nwg, lid), false);
}

@compute @workgroup_size(256)
fn f32_to_bf16(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    narrow(index(wid, nwg, lid), true);
}

@compute @workgroup_size(256)
fn f16_to_f32(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    widen(index(wid, nwg, lid), false);
}

@compute @workgroup_size(256)
fn bf16_to_f32(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    widen(index(wid, nwg, lid), true);
}
