//! Seeded, portable random numbers.
//!
//! Counter-based (a SplitMix64-style hash of `(seed, index)`), so that the same
//! seed gives the same numbers on every platform and in every backend: a GPU
//! kernel can compute element `i`'s dropout decision without a host round-trip.

/// Hashes `(seed, index)` to 64 well-mixed bits.
pub fn hash64(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform float in `[0, 1)` for element `index` of stream `seed` (24 bits).
pub fn uniform_at(seed: u64, index: u64) -> f32 {
    (hash64(seed, index) >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
}

/// `n` uniform samples in `[low, high)`.
pub fn uniform(seed: u64, n: usize, low: f32, high: f32) -> Vec<f32> {
    (0..n as u64)
        .map(|i| low + (high - low) * uniform_at(seed, i))
        .collect()
}

/// `n` normal samples with the given mean and standard deviation (Box-Muller).
pub fn normal(seed: u64, n: usize, mean: f32, std: f32) -> Vec<f32> {
    (0..n as u64)
        .map(|i| {
            let a = hash64(seed, 2 * i);
            let b = hash64(seed, 2 * i + 1);
            // u1 in (0, 1], u2 in [0, 1), both with 53 bits.
            let u1 = ((a >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
            let u2 = (b >> 11) as f64 / (1u64 << 53) as f64;
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            mean + std * z as f32
        })
        .collect()
}

/// The murmur3 32-bit finaliser.
fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// The 32-bit key of stream `seed` used by [`uniform32_at`]: a GPU kernel
/// gets it from the host and hashes each index with it.
pub fn key32(seed: u64) -> u32 {
    fmix32((seed as u32) ^ fmix32((seed >> 32) as u32 ^ 0x9e37_79b9))
}

/// A uniform float in `[0, 1)` from 32-bit arithmetic only (WGSL has no u64),
/// used for dropout masks so that every backend draws the same mask.
pub fn uniform32_at(seed: u64, index: u32) -> f32 {
    let h = fmix32(index.wrapping_mul(0x9e37_79b9) ^ key32(seed));
    (h >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
}
