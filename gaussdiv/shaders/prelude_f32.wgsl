// gaussdiv: the f32 prelude — the first part of every f32 module (see
// src/gpu/kernel.rs). It defines what the shared formula files
// (ln_exp.wgsl, measures.wgsl, gradients.wgsl, diagonal.wgsl, ...) need from
// the format:
// * the aliases F (the float type) and U (its bit pattern);
// * the constants of the format and of the series (the values of the f32
//   `Real` implementation in src/math/real.rs);
// * the polynomials whose length depends on the precision (ln_poly,
//   exp_poly, atanh_r, atanh_r_wide, taylor_tail2);
// * the primitives on the bit layout (frexp1, pow2, split_hi, exact_sub, the
//   validity tests) and sqrt_f, round_even (the builtins, in f32).
//
// KEEP IN SYNC with src/math/real.rs (`impl_real!(f32, ...)`: same
// constants, same operations) and with prelude_f64.wgsl (the same names).

alias F = f32;
alias U = u32;

const F_MAX: f32 = 0x1.fffffep+127f; // f32::MAX exactly (3.40282347e+38 in decimal exceeds it; Tint rejects that)
const F_MIN_NORMAL: f32 = 1.17549435e-38;
const EPS: f32 = 0x1p-24f; // unit roundoff
const SQRT2: f32 = 1.41421356237309504880;
const LN2_HI: f32 = 6.9313812256e-01; // 0x3f317180
const LN2_LO: f32 = 9.0580006145e-06; // 0x3717f7d1
const HALF_LN_2PI_E: f32 = 1.4189385332046727417803297364;
const HALVE_THRESHOLD: f32 = 8.50705917e+37; // F_MAX * 0.25
const MAX_EXP: i32 = 128;
const MIN_EXP: i32 = -126;
const SAFE_EXP: i32 = 64;
const INF_BITS: u32 = 0x7f800000u;
const NAN_BITS: u32 = 0x7fc00000u;
const HALF_LN2: f32 = 0.346573590279972654708616060729;
const INV_LN2: f32 = 1.442695040888963407359924681;
const EXP_LN2_HI: f32 = 6.9314575195e-01; // 0x3f317200
const EXP_LN2_LO: f32 = 1.4286067653e-06; // 0x35bfbe8e
const EXP_ARG_MAX: f32 = 352.0;
const LOG_BIG: f32 = 150.0;

// fdlibm (FreeBSD e_logf.c) Lg1..Lg4.
const LG1: f32 = 0.66666662693;
const LG2: f32 = 0.40000972152;
const LG3: f32 = 0.28498786688;
const LG4: f32 = 0.24279078841;

// R(t) = sum t^j / (2j + 3), seven terms (t <= 1/9).
const R0: f32 = 0.33333333333333333;
const R1: f32 = 0.2;
const R2: f32 = 0.14285714285714286;
const R3: f32 = 0.11111111111111111;
const R4: f32 = 0.09090909090909091;
const R5: f32 = 0.07692307692307693;
const R6: f32 = 0.06666666666666667;
// ... continued to fifteen terms (t <= 0.36).
const R7: f32 = 0.058823529411764705;
const R8: f32 = 0.052631578947368418;
const R9: f32 = 0.047619047619047616;
const R10: f32 = 0.043478260869565216;
const R11: f32 = 0.040000000000000001;
const R12: f32 = 0.037037037037037035;
const R13: f32 = 0.034482758620689655;
const R14: f32 = 0.032258064516129031;

// fdlibm (FreeBSD e_expf.c) P1, P2.
const EXP_P1: f32 = 1.6666625440e-1;
const EXP_P2: f32 = -2.7667332906e-3;

// 1/n!, n = 1 .. 12: Taylor coefficients of (e^x - 1)/x (and from T2 on of
// 2(e^x - 1 - x)/x^2).
const T1: f32 = 1.0;
const T2: f32 = 0.5;
const T3: f32 = 0.16666666666666666;
const T4: f32 = 0.041666666666666664;
const T5: f32 = 0.0083333333333333332;
const T6: f32 = 0.0013888888888888889;
const T7: f32 = 0.00019841269841269841;
const T8: f32 = 2.4801587301587302e-05;
const T9: f32 = 2.7557319223985893e-06;
const T10: f32 = 2.7557319223985888e-07;
const T11: f32 = 2.505210838544172e-08;
const T12: f32 = 2.08767569878681e-09;
const NEG_INF_BITS: u32 = 0xff800000u;

// x = m * 2^k for the bits of a positive finite f32 (subnormals included).
fn frexp1(bits: u32) -> Frexp {
    let exp_field = i32(bits >> 23u);
    let frac = bits & 0x007fffffu;
    if (exp_field != 0) {
        return Frexp(bitcast<f32>(frac | 0x3f800000u), exp_field - 127);
    }
    let shift = countLeadingZeros(frac) - 8u;
    let normal = (frac << shift) & 0x007fffffu;
    return Frexp(bitcast<f32>(normal | 0x3f800000u), -126 - i32(shift));
}

// 2^e for MIN_EXP <= e < MAX_EXP; 0 below MIN_EXP (the bits are then 0);
// 2^127 above (such values are always selected away).
fn pow2(e: i32) -> f32 {
    let c = clamp(e, -127, 127);
    return bitcast<f32>(u32(c + 127) << 23u);
}

// The high 12 bits of the significand (bit mask).
fn split_hi(x: f32) -> f32 {
    return bitcast<f32>(bitcast<u32>(x) & 0xfffff000u);
}

// a - b exactly for positive normal a, b whose exponents differ by at most one.
fn exact_sub(a: f32, b: f32) -> f32 {
    let ab = bitcast<u32>(a);
    let bb = bitcast<u32>(b);
    let ea = i32(ab >> 23u);
    let eb = i32(bb >> 23u);
    let e = min(ea, eb);
    let ma = i32((ab & 0x007fffffu) | 0x00800000u);
    let mb = i32((bb & 0x007fffffu) | 0x00800000u);
    let sa = u32(clamp(ea - e, 0, 1));
    let sb = u32(clamp(eb - e, 0, 1));
    let d = f32((ma << sa) - (mb << sb));
    let sc = e - 127 - 23;
    let s1 = sc >> 1u;
    return d * pow2(s1) * pow2(sc - s1);
}

// The builtin square root (correctly rounded in f32).
fn sqrt_f(x: f32) -> f32 {
    return sqrt(x);
}

// x rounded to the nearest integer, ties to even: the builtin.
fn round_even(x: f32) -> f32 {
    return round(x);
}

fn is_valid_sigma(bits: u32) -> bool {
    // 0 < a <= F_MAX: positive sign, not zero, exponent field not all ones.
    return bits - 1u < 0x7f7fffffu;
}

fn is_finite_bits(bits: u32) -> bool {
    return (bits & 0x7f800000u) != 0x7f800000u;
}

fn is_nan_bits(bits: u32) -> bool {
    return (bits & 0x7fffffffu) > INF_BITS;
}

// ln(1 + f) = f - f^2/2 + s (f^2/2 + z ln_poly(z)), z = s^2: Lg1..Lg4.
fn ln_poly(z: f32) -> f32 {
    return LG1 + z * (LG2 + z * (LG3 + z * LG4));
}

// e^r ~ 1 + 2r/(2 - c), c = r - t exp_poly(t), t = r^2: P1, P2.
fn exp_poly(t: f32) -> f32 {
    return EXP_P1 + t * EXP_P2;
}

// R(t) = sum t^j / (2j + 3).
fn atanh_r(t: f32) -> f32 {
    return R0 + t * (R1 + t * (R2 + t * (R3 + t * (R4 + t * (R5 + t * R6)))));
}

// R(t) with fifteen terms, t <= 0.36.
fn atanh_r_wide(t: f32) -> f32 {
    return R0 + t * (R1 + t * (R2 + t * (R3 + t * (R4 + t * (R5 + t * (R6 + t * (R7 + t * (R8 + t * (R9
        + t * (R10 + t * (R11 + t * (R12 + t * (R13 + t * R14)))))))))))));
}

// 1/3! + x/4! + ... + x^9/12!
fn taylor_tail2(x: f32) -> f32 {
    return T3 + x * (T4 + x * (T5 + x * (T6 + x * (T7 + x * (T8 + x * (T9 + x * (T10 + x * (T11 + x * T12))))))));
}
