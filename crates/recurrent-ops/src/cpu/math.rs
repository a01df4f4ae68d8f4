//! `exp`, the logistic function and `tanh` in f32 without libm: polynomials of plain multiplies and
//! adds that the compiler vectorizes over a slice, with a true division (no approximate reciprocal),
//! so the bits are the same whatever the vector width, the alignment or the machine.

/// 1.5 · 2²³: adding and subtracting it rounds an f32 of magnitude below 2²² to the nearest integer.
const ROUND: f32 = 12_582_912.0;
const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in two (Cody–Waite), the first part with few enough bits that `k · LN2_HI` is exact.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Where `exp` saturates: e^88 and e^-87 are still normal f32 numbers.
const EXP_MAX: f32 = 88.0;
const EXP_MIN: f32 = -87.0;
/// Below this magnitude `tanh` is its odd polynomial, above it `1 - 2 / (e^{2x} + 1)`.
const TANH_SMALL: f32 = 0.625;
/// `tanh` is 1 in f32 beyond this.
const TANH_MAX: f32 = 10.0;

/// e^x, within about 1 ulp for x in [-87, 88] (clamped outside): x = k ln 2 + r with |r| ≤ ln 2 / 2,
/// e^r by a degree-7 polynomial (a minimax fit of degree 5 for (e^r - 1 - r) / r²), 2^k by its bits.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(EXP_MIN, EXP_MAX);
    // k = round(x / ln 2), an integer in [-126, 127], sits in the low bits of `shifted`.
    let shifted = x * LOG2_E + ROUND;
    let k = shifted - ROUND;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let e_r = p * (r * r) + r + 1.0;
    // 2^k from those bits by integer arithmetic only (a float-to-int cast does not vectorize).
    let k_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    let scale = f32::from_bits(k_bits.wrapping_add(127) << 23);
    e_r * scale
}

/// The logistic function `1 / (1 + e^-x)`, with a true division.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// tanh x: an odd polynomial below 0.625 in magnitude (minimax, as Cephes' `tanhf`), where
/// `1 - 2 / (e^{2x} + 1)` would lose the low bits; that formula above, with the sign put back.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    // Not `min`, which would turn NaN into TANH_MAX: NaN goes through, as a diverging run must see it.
    let a = x.abs();
    let a = if a > TANH_MAX { TANH_MAX } else { a };
    let z = a * a;
    let p = -5.704_988_7e-3;
    let p = p * z + 2.063_909e-2;
    let p = p * z - 5.373_971_6e-2;
    let p = p * z + 1.333_144_2e-1;
    let p = p * z - 3.333_328e-1;
    let small = p * z * a + a;
    let large = 1.0 - 2.0 / (exp(a + a) + 1.0);
    let magnitude = if a < TANH_SMALL { small } else { large };
    magnitude.copysign(x)
}

/// [`sigmoid`] of every element, in place.
#[inline(always)]
pub fn sigmoid_in_place(values: &mut [f32]) {
    for v in values {
        *v = sigmoid(*v);
    }
}

/// [`tanh`] of every element, in place.
#[inline(always)]
pub fn tanh_in_place(values: &mut [f32]) {
    for v in values {
        *v = tanh(*v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between an f32 and the exact value, rounded to f32.
    fn ulps(got: f32, exact: f64) -> u32 {
        let want = exact as f32;
        if got == want {
            return 0;
        }
        let key = |v: f32| {
            let b = v.to_bits() as i32;
            if b < 0 { i32::MIN - b } else { b }
        };
        key(got).abs_diff(key(want))
    }

    /// Every 97th f32 bit pattern in `[lo, hi]` and its negation.
    fn samples(lo: f32, hi: f32) -> impl Iterator<Item = f32> {
        (lo.to_bits()..=hi.to_bits())
            .step_by(97)
            .map(f32::from_bits)
            .flat_map(|v| [v, -v])
    }

    #[test]
    fn exp_is_within_two_ulps_over_its_range() {
        let worst = samples(1e-30, 87.0)
            .map(|x| (ulps(exp(x), (x as f64).exp()), x))
            .max_by_key(|(u, _)| *u)
            .unwrap();
        assert!(worst.0 <= 2, "exp: {} ulps at {}", worst.0, worst.1);
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(200.0).is_finite() && exp(-200.0) >= 0.0);
    }

    #[test]
    fn sigmoid_and_tanh_are_within_a_few_ulps() {
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        let worst_sigmoid = samples(1e-30, 80.0)
            .map(|x| (ulps(sigmoid(x), sig(x as f64)), x))
            .max_by_key(|(u, _)| *u)
            .unwrap();
        assert!(worst_sigmoid.0 <= 3, "sigmoid: {:?}", worst_sigmoid);
        let worst_tanh = samples(1e-30, 20.0)
            .map(|x| (ulps(tanh(x), (x as f64).tanh()), x))
            .max_by_key(|(u, _)| *u)
            .unwrap();
        assert!(worst_tanh.0 <= 3, "tanh: {:?}", worst_tanh);
    }

    #[test]
    fn limits_and_signs() {
        assert_eq!(tanh(0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(tanh(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(tanh(50.0), 1.0);
        assert_eq!(tanh(-50.0), -1.0);
        assert_eq!(sigmoid(0.0), 0.5);
        assert_eq!(sigmoid(100.0), 1.0);
        assert!(sigmoid(-100.0) >= 0.0 && sigmoid(-100.0) < 1e-37);
        assert!(tanh(f32::NAN).is_nan() && sigmoid(f32::NAN).is_nan());
    }

    #[test]
    fn slices_match_the_scalar_functions() {
        let values: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) * 0.037).collect();
        let mut s = values.clone();
        sigmoid_in_place(&mut s[3..]);
        let mut t = values.clone();
        tanh_in_place(&mut t[1..]);
        for i in 3..values.len() {
            assert_eq!(s[i].to_bits(), sigmoid(values[i]).to_bits());
        }
        for i in 1..values.len() {
            assert_eq!(t[i].to_bits(), tanh(values[i]).to_bits());
        }
    }
}
