// gaussdiv: the f64 prelude — the first part of every f64 module (see
// src/gpu/kernel.rs): the f64 counterpart of prelude_f32.wgsl, with the same
// names (aliases F and U, the constants, the polynomials, the primitives).
//
// KEEP IN SYNC with src/math/real.rs (`impl_real!(f64, ...)`: the same
// constants, checked by tests/shader.rs) and with prelude_f32.wgsl.
//
// Requires the device features SHADER_F64 (the f64 type) and SHADER_INT64
// (u64 / i64: the inputs are read as bits, frexp1, pow2, split_hi and
// exact_sub are bit manipulation). No builtin log/exp/pow/sqrt/round on
// f64 (docs/ARCHITECTURE.md §2.6): GLSL.std.450 defines the transcendentals
// for 16- and 32-bit floats only, and on lavapipe they compile and run
// silently wrong; the f64 square root is not relied on either (it is not
// available on every backend, e.g. DXIL): sqrt64 is Newton's iteration from
// an f32 seed with a final exact-residual correction, round_even uses
// conversions to i32. Only +, -, *, /, comparisons, select, abs,
// conversions and the f32 sqrt. countLeadingZeros on u64 is not supported by
// naga 30 (gfx-rs/wgpu#5276): the 52-bit fraction is split into two u32
// halves. Subnormal doubles may flush on the device (lavapipe flushes them):
// see §2.5.

alias F = f64;
alias U = u64;

const F_MAX: f64 = 1.7976931348623157e+308;
const F_MIN_NORMAL: f64 = 2.2250738585072014e-308;
const EPS: f64 = 0x1p-53; // unit roundoff
const SQRT2: f64 = 1.41421356237309504880;
const LN2_HI: f64 = 6.93147180369123816490e-01; // 0x3fe62e42fee00000
const LN2_LO: f64 = 1.90821492927058770002e-10; // 0x3dea39ef35793c76
const HALF_LN_2PI_E: f64 = 1.4189385332046727417803297364;
const HALVE_THRESHOLD: f64 = 4.4942328371557893e+307; // F_MAX * 0.25 (exact)
const MAX_EXP: i32 = 1024;
const MIN_EXP: i32 = -1022;
const SAFE_EXP: i32 = 512;
const INF_BITS: u64 = 0x7ff0000000000000lu;
const NAN_BITS: u64 = 0x7ff8000000000000lu;
const FRAC_MASK: u64 = 0x000ffffffffffffflu;
const HIDDEN_BIT: u64 = 0x0010000000000000lu;
const ONE_BITS: u64 = 0x3ff0000000000000lu;
// split_hi clears the low 27 bits of the significand.
const SPLIT_MASK: u64 = 0xfffffffff8000000lu;
const HALF_LN2: f64 = 0.346573590279972654708616060729;
const INV_LN2: f64 = 1.4426950408889634; // LOG2_E
const EXP_LN2_HI: f64 = 6.93147180369123816490e-01; // fdlibm e_exp.c ln2HI
const EXP_LN2_LO: f64 = 1.90821492927058770002e-10; // ln2LO
const EXP_ARG_MAX: f64 = 3000.0;
const LOG_BIG: f64 = 1200.0;

// fdlibm (e_log.c) Lg1..Lg7.
const LG1: f64 = 6.666666666666735130e-01;
const LG2: f64 = 3.999999999940941908e-01;
const LG3: f64 = 2.857142874366239149e-01;
const LG4: f64 = 2.222219843214978396e-01;
const LG5: f64 = 1.818357216161805012e-01;
const LG6: f64 = 1.531383769920937332e-01;
const LG7: f64 = 1.479819860511658591e-01;

// R(t) = sum t^j / (2j + 3), sixteen terms (t <= 1/9), each correctly rounded
// (the same f64 division as src/math/real.rs; naga evaluates these in f64).
const R0: f64 = 1.0 / 3.0;
const R1: f64 = 1.0 / 5.0;
const R2: f64 = 1.0 / 7.0;
const R3: f64 = 1.0 / 9.0;
const R4: f64 = 1.0 / 11.0;
const R5: f64 = 1.0 / 13.0;
const R6: f64 = 1.0 / 15.0;
const R7: f64 = 1.0 / 17.0;
const R8: f64 = 1.0 / 19.0;
const R9: f64 = 1.0 / 21.0;
const R10: f64 = 1.0 / 23.0;
const R11: f64 = 1.0 / 25.0;
const R12: f64 = 1.0 / 27.0;
const R13: f64 = 1.0 / 29.0;
const R14: f64 = 1.0 / 31.0;
const R15: f64 = 1.0 / 33.0;
// ... continued to thirty-six terms (t <= 0.36).
const R16: f64 = 1.0 / 35.0;
const R17: f64 = 1.0 / 37.0;
const R18: f64 = 1.0 / 39.0;
const R19: f64 = 1.0 / 41.0;
const R20: f64 = 1.0 / 43.0;
const R21: f64 = 1.0 / 45.0;
const R22: f64 = 1.0 / 47.0;
const R23: f64 = 1.0 / 49.0;
const R24: f64 = 1.0 / 51.0;
const R25: f64 = 1.0 / 53.0;
const R26: f64 = 1.0 / 55.0;
const R27: f64 = 1.0 / 57.0;
const R28: f64 = 1.0 / 59.0;
const R29: f64 = 1.0 / 61.0;
const R30: f64 = 1.0 / 63.0;
const R31: f64 = 1.0 / 65.0;
const R32: f64 = 1.0 / 67.0;
const R33: f64 = 1.0 / 69.0;
const R34: f64 = 1.0 / 71.0;
const R35: f64 = 1.0 / 73.0;

// fdlibm (e_exp.c) P1..P5.
const EXP_P1: f64 = 1.66666666666666019037e-01;
const EXP_P2: f64 = -2.77777777770155933842e-03;
const EXP_P3: f64 = 6.61375632143793436117e-05;
const EXP_P4: f64 = -1.65339022054652515390e-06;
const EXP_P5: f64 = 4.13813679705723846039e-08;

// 1/n!, n = 1 .. 21: Taylor coefficients of (e^x - 1)/x (and from T2 on of
// 2(e^x - 1 - x)/x^2).
const T1: f64 = 1.0;
const T2: f64 = 1.0 / 2.0;
const T3: f64 = 1.0 / 6.0;
const T4: f64 = 1.0 / 24.0;
const T5: f64 = 1.0 / 120.0;
const T6: f64 = 1.0 / 720.0;
const T7: f64 = 1.0 / 5040.0;
const T8: f64 = 1.0 / 40320.0;
const T9: f64 = 1.0 / 362880.0;
const T10: f64 = 1.0 / 3628800.0;
const T11: f64 = 1.0 / 39916800.0;
const T12: f64 = 1.0 / 479001600.0;
const T13: f64 = 1.0 / 6227020800.0;
const T14: f64 = 1.0 / 87178291200.0;
const T15: f64 = 1.0 / 1307674368000.0;
const T16: f64 = 1.0 / 20922789888000.0;
const T17: f64 = 1.0 / 355687428096000.0;
const T18: f64 = 1.0 / 6402373705728000.0;
const T19: f64 = 1.0 / 121645100408832000.0;
const T20: f64 = 1.0 / 2432902008176640000.0;
const T21: f64 = 1.0 / 51090942171709440000.0;
const NEG_INF_BITS: u64 = 0xfff0000000000000lu;

// Leading zeros of a u64, from its two u32 halves.
fn clz64(x: u64) -> u32 {
    let hi = u32(x >> 32u);
    let lo = u32(x & 0xfffffffflu);
    return select(countLeadingZeros(hi), 32u + countLeadingZeros(lo), hi == 0u);
}

// x = m * 2^k for the bits of a positive finite f64 (subnormals included).
fn frexp1(bits: u64) -> Frexp {
    let exp_field = i32(bits >> 52u);
    let frac = bits & FRAC_MASK;
    if (exp_field != 0) {
        return Frexp(bitcast<f64>(frac | ONE_BITS), exp_field - 1023);
    }
    let shift = clz64(frac) - 11u;
    let normal = (frac << shift) & FRAC_MASK;
    return Frexp(bitcast<f64>(normal | ONE_BITS), -1022 - i32(shift));
}

// 2^e for MIN_EXP <= e < MAX_EXP; 0 below MIN_EXP (the bits are then 0);
// 2^1023 above (such values are always selected away).
fn pow2(e: i32) -> f64 {
    let c = clamp(e, -1023, 1023);
    return bitcast<f64>(u64(c + 1023) << 52u);
}

// The high 26 bits of the significand (bit mask).
fn split_hi(x: f64) -> f64 {
    return bitcast<f64>(bitcast<u64>(x) & SPLIT_MASK);
}

// a - b exactly for positive normal a, b whose exponents differ by at most one.
fn exact_sub(a: f64, b: f64) -> f64 {
    let ab = bitcast<u64>(a);
    let bb = bitcast<u64>(b);
    let ea = i32(ab >> 52u);
    let eb = i32(bb >> 52u);
    let e = min(ea, eb);
    let ma = i64((ab & FRAC_MASK) | HIDDEN_BIT);
    let mb = i64((bb & FRAC_MASK) | HIDDEN_BIT);
    let sa = u32(clamp(ea - e, 0, 1));
    let sb = u32(clamp(eb - e, 0, 1));
    let d = f64((ma << sa) - (mb << sb));
    let sc = e - 1023 - 52;
    let s1 = sc >> 1u;
    return d * pow2(s1) * pow2(sc - s1);
}

// x rounded to the nearest integer, ties to even (WGSL `round`, Rust
// round_ties_even), for |x| < 2^31: by conversions, not the f64 builtin.
fn round_even(x: f64) -> f64 {
    let n = i32(x); // towards zero
    let t = f64(n);
    let f = abs(x - t); // exact
    let odd = (n & 1) != 0;
    let away = f > 0.5 || (f == 0.5 && odd);
    return select(t, select(t - 1.0, t + 1.0, x > 0.0), away);
}

// Square root of x >= 0 (0 for x <= 0): the exponent halved on the bits,
// the mantissa m in [1, 4) by two Newton steps from the f32 square root and
// a final correction by the residual m - y^2 (two_prod): within one ulp,
// correctly rounded but where y + correction is (near) a tie, e.g. m just
// below 4 (tests/gpu_f64_sqrt.rs counts them). Not the builtin: Vulkan only
// promises single-precision accuracy for f64 instructions, and not every
// backend has an f64 sqrt. Subnormal x is decomposed exactly, like sigma.
fn sqrt64(x: f64) -> f64 {
    let pos = x > 0.0;
    let fr = frexp1(bitcast<u64>(select(1.0, x, pos)));
    let odd = fr.k & 1;
    let m = select(fr.m, 2.0 * fr.m, odd != 0);
    let h = (fr.k - odd) >> 1u;
    let y0 = f64(sqrt(f32(m)));
    let y1 = 0.5 * (y0 + m / y0);
    let y2 = 0.5 * (y1 + m / y1);
    let sq = two_prod(y2, y2);
    let r = exact_sub(m, sq.h) - sq.l;
    let y = y2 + r / (2.0 * y2);
    return select(0.0, y * pow2(h), pos);
}


// The square root (sqrt64; not the f64 builtin, see above).
fn sqrt_f(x: f64) -> f64 {
    return sqrt64(x);
}

fn is_valid_sigma(bits: u64) -> bool {
    // 0 < a <= F_MAX: positive sign, not zero, exponent field not all ones.
    return bits - 1lu < 0x7feffffffffffffflu;
}

fn is_finite_bits(bits: u64) -> bool {
    return (bits & INF_BITS) != INF_BITS;
}

fn is_nan_bits(bits: u64) -> bool {
    return (bits & 0x7ffffffffffffffflu) > INF_BITS;
}

// ln(1 + f) = f - f^2/2 + s (f^2/2 + z ln_poly(z)), z = s^2: Lg1..Lg7.
fn ln_poly(z: f64) -> f64 {
    return LG1 + z * (LG2 + z * (LG3 + z * (LG4 + z * (LG5 + z * (LG6 + z * LG7)))));
}

// e^r ~ 1 + 2r/(2 - c), c = r - t exp_poly(t), t = r^2: P1..P5.
fn exp_poly(t: f64) -> f64 {
    return EXP_P1 + t * (EXP_P2 + t * (EXP_P3 + t * (EXP_P4 + t * EXP_P5)));
}

// R(t) = sum t^j / (2j + 3), sixteen terms.
fn atanh_r(t: f64) -> f64 {
    return R0 + t * (R1 + t * (R2 + t * (R3 + t * (R4 + t * (R5 + t * (R6 + t * (R7 + t * (R8 + t * (R9
        + t * (R10 + t * (R11 + t * (R12 + t * (R13 + t * (R14 + t * R15))))))))))))));
}

// R(t) with thirty-six terms, t <= 0.36.
fn atanh_r_wide(t: f64) -> f64 {
    let tail = R16 + t * (R17 + t * (R18 + t * (R19 + t * (R20 + t * (R21 + t * (R22 + t * (R23 + t * (R24
        + t * (R25 + t * (R26 + t * (R27 + t * (R28 + t * (R29 + t * (R30 + t * (R31 + t * (R32 + t * (R33
        + t * (R34 + t * R35))))))))))))))))));
    return R0 + t * (R1 + t * (R2 + t * (R3 + t * (R4 + t * (R5 + t * (R6 + t * (R7 + t * (R8 + t * (R9
        + t * (R10 + t * (R11 + t * (R12 + t * (R13 + t * (R14 + t * (R15 + t * tail)))))))))))))));
}

// 1/3! + x/4! + ... + x^18/21!
fn taylor_tail2(x: f64) -> f64 {
    return T3 + x * (T4 + x * (T5 + x * (T6 + x * (T7 + x * (T8 + x * (T9 + x * (T10 + x * (T11 + x * (T12
        + x * (T13 + x * (T14 + x * (T15 + x * (T16 + x * (T17 + x * (T18 + x * (T19 + x * (T20
        + x * T21)))))))))))))))));
}
