//! `exp` and `erf` written without branches or calls, so that a loop inside
//! [`super::wide::wide`] vectorises them (16 lanes on AVX-512) where a call
//! to the C library's `expf` or `libm::erff` runs one element at a time.
//! Comparisons and clamps (which keep NaN) become lane selects; plain multiplies and adds (no FMA: Rust
//! does not contract them) give the same bits at every vector width.
//!
//! Accuracy against float64 (the tests measure it over the whole range):
//! [`exp`] within 2 ulp, with subnormal results and overflow to infinity
//! as `expf` gives them; [`erf`] within 5e-7 absolute (a rational fit on
//! [-4, 4], as Eigen and TensorFlow evaluate it, whose own error is 9e-8;
//! the rest is f32 rounding in its two polynomials, largest on results
//! near ±1, where f32's step is 6e-8; from ±4 on, ±1).
//! NaN gives NaN.

/// `e^x`: `x = n ln 2 + r` with `|r| <= ln 2 / 2`, a degree-6 polynomial
/// for `e^r` (Cephes' `expf`), then `2^n` as two exponent-field scalings
/// (so that subnormal results and `2^128` come out as `expf`'s).
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that `n * LN2_HI` is exact for |n| < 2^15.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5 * 2^23 rounds to an integer, held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    // Below -104, e^x rounds to 0; above 89, to infinity (the polynomial
    // and the scalings take the clamped values there).
    let x = x.clamp(-104.0, 89.0);
    let t = x * LOG2_E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e_r = p * (r * r) + r + 1.0;
    // n in [-150, 129], from t's low bits.
    let k = t.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    let (k1, k2) = (k >> 1, k - (k >> 1));
    let two_k1 = f32::from_bits(((k1 + 127) << 23) as u32);
    let two_k2 = f32::from_bits(((k2 + 127) << 23) as u32);
    e_r * two_k1 * two_k2
}

/// `erf(x)`: `x * P(x^2) / Q(x^2)` for `|x| < 4`, else exactly ±1 (so that
/// GELU at -inf is `-inf * 0`, NaN, as in PyTorch).
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let c = x.clamp(-4.0, 4.0);
    let x2 = c * c;
    let mut p = -2.726_142_3e-10;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 + -2.101_024e-6;
    p = p * x2 + -5.692_506_4e-5;
    p = p * x2 + -7.349_906_3e-4;
    p = p * x2 + -2.954_6e-3;
    p = p * x2 + -1.609_603_3e-2;
    let mut q = -1.456_607_2e-5;
    q = q * x2 + -2.133_740_6e-4;
    q = q * x2 + -1.682_827e-3;
    q = q * x2 + -7.373_329e-3;
    q = q * x2 + -1.426_474e-2;
    if x >= 4.0 {
        1.0
    } else if x <= -4.0 {
        -1.0
    } else {
        c * p / q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between `got` and the float64
    /// value `want` rounded to f32 (0 when both are the same infinity).
    fn ulps(got: f32, want: f64) -> f64 {
        let w = want as f32;
        if got == w {
            return 0.0;
        }
        let ulp = (f32::from_bits(w.abs().to_bits() + 1) - w.abs()) as f64;
        (got as f64 - want).abs() / ulp
    }

    /// Every 97th f32 from -110 to 90: within 2 ulp of float64's `exp`,
    /// including the subnormal results below -87.3 and the overflow to
    /// infinity above 88.72.
    #[test]
    fn exp_is_within_two_ulp_of_float64_over_its_range() {
        let (lo, hi) = ((-110.0f32).to_bits(), 90.0f32.to_bits());
        let mut worst = (0.0, 0.0f32);
        let negatives = (0x8000_0000..=lo).rev().step_by(97).map(f32::from_bits);
        let positives = (0..=hi).step_by(97).map(f32::from_bits);
        for x in negatives.chain(positives) {
            let want = (x as f64).exp();
            let got = exp(x);
            assert!(!got.is_nan(), "exp({x}) is NaN");
            // Subnormals carry fewer bits: judge them by absolute error.
            let err = if want < f32::MIN_POSITIVE as f64 {
                (got as f64 - want).abs() / f32::from_bits(1) as f64
            } else {
                ulps(got, want)
            };
            if err > worst.0 {
                worst = (err, x);
            }
        }
        assert!(worst.0 <= 2.0, "exp: {} ulp at x = {}", worst.0, worst.1);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-200.0), 0.0);
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(89.0), f32::INFINITY);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
    }

    /// Every 61st f32 in [-6, 6]: within 5e-7 of float64's `erf`; odd;
    /// exactly ±1 at the infinities; NaN stays NaN.
    #[test]
    fn erf_is_within_5e_7_of_float64() {
        let mut worst = (0.0, 0.0f32);
        for bits in (0..=6.0f32.to_bits()).step_by(61) {
            for x in [f32::from_bits(bits), -f32::from_bits(bits)] {
                let err = (erf(x) as f64 - libm::erf(x as f64)).abs();
                if err > worst.0 {
                    worst = (err, x);
                }
                assert_eq!(erf(x), -erf(-x), "erf is odd at {x}");
            }
        }
        assert!(
            worst.0 <= 5e-7,
            "erf: error {:e} at x = {}",
            worst.0,
            worst.1
        );
        assert_eq!(erf(f32::INFINITY), 1.0);
        assert_eq!(erf(f32::NEG_INFINITY), -1.0);
        assert!(erf(f32::NAN).is_nan());
    }
}
