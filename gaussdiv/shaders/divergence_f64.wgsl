// gaussdiv: information measures of Gaussian pairs, in f64.
//
// KEEP IN SYNC with src/math.rs (the f64 instantiation of `measures` and of
// every function it calls: same steps, same order, same constants — those of
// the f64 `impl_real!`, checked by tests/shader.rs — same names) and with
// src/pair.rs (GaussianPair64 = 32 bytes mu1, a1, mu2, a2 with a = sigma,
// sigma^2, ln sigma, ln sigma^2 or 1/sigma^2 by PARAM; output = the selected
// measures in canonical order cross_entropy, kl, entropy, entropy_q,
// reverse_kl, jeffreys, bhattacharyya, bhattacharyya_coefficient, hellinger,
// wasserstein2, 8 bytes each).
//
// KEEP IN SYNC with shaders/divergence.wgsl: this file is its f64 twin,
// line for line (same functions, same steps, same order), except where f64
// needs its own code: frexp1 / pow2 / split_hi / exact_sub on u64 bits,
// sqrt64 and round_even (below) instead of the builtins, the longer series
// of the f64 constants, and no structure-of-arrays entry point.
//
// Requires the device features SHADER_F64 (the f64 type) and SHADER_INT64
// (u64 / i64: the inputs are read as bits, frexp, pow2, split_hi and
// exact_sub are bit manipulation). No builtin log/exp/pow/sqrt/round on
// f64: GLSL.std.450 defines the transcendentals for 16- and 32-bit floats
// only, and on lavapipe they compile and run silently wrong (DESIGN §2.6);
// the f64 square root is not relied on either (it is not available on every
// backend, e.g. DXIL): sqrt64 is Newton's iteration from an f32 seed with a
// final exact-residual correction, round_even uses conversions to i32.
// Only +, -, *, /, comparisons, select, abs, conversions and the f32 sqrt.
// countLeadingZeros on u64 is not supported by naga 30 (gfx-rs/wgpu#5276):
// the 52-bit fraction is split into two u32 halves.
//
// One invocation per pair, a 2-D grid of workgroups, every invocation
// bounds-checked against arrayLength(&pairs) — as in the f32 kernel.
//
// No reliance on inf/NaN arithmetic: overflow is detected by comparisons on
// finite values and +inf / NaN are written as bit patterns. sigma (and a
// variance or precision) is read and decomposed with integer operations
// only, so subnormal values are exact even on devices that flush subnormal
// doubles (lavapipe does). (Subnormal mu or mu1 - mu2 may flush: the host
// path recomputes those rows on the CPU.) Where an exact error term is
// needed, the subtraction that a compiler could simplify algebraically is
// done on the bit patterns (exact_sub), and products are split by bit masks
// (two_prod).

override WORKGROUP_SIZE: u32 = 256u;
// Parameterisation: 0 sigma, 1 sigma^2, 2 ln sigma, 3 ln sigma^2, 4 1/sigma^2.
override PARAM: u32 = 0u;
override WRITE_CE: bool = true;
override WRITE_KL: bool = true;
override WRITE_ENTROPY: bool = true;
override WRITE_ENTROPY_Q: bool = true;
override WRITE_REVERSE_KL: bool = true;
override WRITE_JEFFREYS: bool = true;
override WRITE_BHATTACHARYYA: bool = true;
override WRITE_BHATTACHARYYA_COEFFICIENT: bool = true;
override WRITE_HELLINGER: bool = true;
override WRITE_WASSERSTEIN2: bool = true;

// Entry point `main` (array of pairs) uses bindings 0 and 1, the layout of
// the f32 kernel's `main` (one bind group layout serves both).
@group(0) @binding(0) var<storage, read> pairs: array<vec4<u64>>;
@group(0) @binding(1) var<storage, read_write> results: array<f64>;

const PARAM_STD: u32 = 0u;
const PARAM_VAR: u32 = 1u;
const PARAM_LOGSTD: u32 = 2u;
const PARAM_LOGVAR: u32 = 3u;
const PARAM_PRECISION: u32 = 4u;

const NO_EXP: i32 = -100000;
const F64_MAX: f64 = 1.7976931348623157e+308;
const F64_MIN_NORMAL: f64 = 2.2250738585072014e-308;
const SQRT2: f64 = 1.41421356237309504880;
const LN2_HI: f64 = 6.93147180369123816490e-01; // 0x3fe62e42fee00000
const LN2_LO: f64 = 1.90821492927058770002e-10; // 0x3dea39ef35793c76
const HALF_LN_2PI_E: f64 = 1.4189385332046727417803297364;
const HALVE_THRESHOLD: f64 = 4.4942328371557893e+307; // F64_MAX * 0.25 (exact)
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
const SAT_EXP: i32 = 1048576; // 1 << 20: exponent of a saturated exp
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
// (the same f64 division as src/math.rs; naga evaluates these in f64).
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

struct Frexp {
    m: f64, // in [1, 2) for frexp1; a mantissa of bounded range elsewhere
    k: i32,
}

struct Pair2 {
    h: f64,
    l: f64,
}

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

// ln(x * 2^k) for positive normal x: fdlibm's reduction and polynomial.
fn ln_scaled(x: f64, k: i32) -> f64 {
    let fr = frexp1(bitcast<u64>(x));
    let high = fr.m > SQRT2;
    let m = select(fr.m, fr.m * 0.5, high);
    let e = fr.k + select(0, 1, high);
    let dk = f64(e + k);
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let r = z * (LG1 + z * (LG2 + z * (LG3 + z * (LG4 + z * (LG5 + z * (LG6 + z * LG7))))));
    let hfsq = 0.5 * f * f;
    return dk * LN2_HI - ((hfsq - (s * (hfsq + r) + dk * LN2_LO)) - f);
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

// V(rho) from u = (rho^2 - 1)/(rho^2 + 1), |u| <= 0.6: u^2 (1/(1 - u) - u R(u^2)).
fn scale_part_u(u: f64) -> f64 {
    let t = u * u;
    return t * (1.0 / (1.0 - u) - u * atanh_r_wide(t));
}

// V(rho) = (rho^2 - 1)/2 - ln(rho) from w = (rho - 1)/(rho + 1), |w| <= 1/3.
fn scale_part_near(w: f64) -> f64 {
    let t = w * w;
    let one_minus_w = 1.0 - w;
    let lead = (2.0 - w) / (one_minus_w * one_minus_w);
    let tail = w * atanh_r(t);
    return 2.0 * t * (lead - tail);
}

fn clampf(x: f64, lo: f64, hi: f64) -> f64 {
    return select(select(x, lo, x < lo), hi, x > hi);
}

// 1/1! + x/2! + ... + x^20/21!
fn taylor(x: f64) -> f64 {
    return T1 + x * taylor_tail(x);
}

// 1/2! + x/3! + ... + x^19/21!
fn taylor_tail(x: f64) -> f64 {
    return T2 + x * taylor_tail2(x);
}

// 1/3! + x/4! + ... + x^18/21!
fn taylor_tail2(x: f64) -> f64 {
    return T3 + x * (T4 + x * (T5 + x * (T6 + x * (T7 + x * (T8 + x * (T9 + x * (T10 + x * (T11 + x * (T12
        + x * (T13 + x * (T14 + x * (T15 + x * (T16 + x * (T17 + x * (T18 + x * (T19 + x * (T20
        + x * T21)))))))))))))))));
}

// (y, k) with e^x ~ y * 2^k, y in [sqrt(1/2), sqrt(2)]: fdlibm's exp without the final scaling.
fn exp_split(x: f64) -> Frexp {
    let xc = clampf(x, -EXP_ARG_MAX, EXP_ARG_MAX);
    let kf = round_even(xc * INV_LN2);
    let k = i32(kf);
    let hi = xc - kf * EXP_LN2_HI;
    let lo = kf * EXP_LN2_LO;
    let r = hi - lo;
    let t = r * r;
    let c = r - t * (EXP_P1 + t * (EXP_P2 + t * (EXP_P3 + t * (EXP_P4 + t * EXP_P5))));
    let y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
    return Frexp(y, k);
}

// exp_split with the exponent saturated to +-SAT_EXP beyond +-EXP_ARG_MAX.
fn exp_sat(x: f64) -> Frexp {
    let e = exp_split(x);
    return Frexp(e.m, select(select(e.k, -SAT_EXP, x < -EXP_ARG_MAX), SAT_EXP, x > EXP_ARG_MAX));
}

// e^x - 1, accurate relative to the result for every x.
fn expm1(x: f64) -> f64 {
    let small = abs(x) <= 0.5;
    let series = x * taylor(x);
    let e = exp_split(x);
    let big = e.m * pow2(e.k) - 1.0;
    return select(big, series, small);
}

struct Scaled {
    v: f64,
    inf: bool,
}

// y * 2^e and whether it exceeds F64_MAX (0 <= y <= 2^8, any e).
fn scale_exp(y: f64, e: i32) -> Scaled {
    let e1 = e >> 1u;
    let e2 = e - e1;
    let v = y * pow2(e1) * pow2(e2);
    let inf = e > MAX_EXP + 8 || (e > MAX_EXP - 16 && y > F64_MAX * pow2(-e1) * pow2(-e2));
    return Scaled(v, inf);
}

// sqrt(m * 2^e) as s * 2^f.
fn sqrt_exp(m: f64, e: i32) -> Frexp {
    let odd = e & 1;
    return Frexp(sqrt64(select(m, 2.0 * m, odd != 0)), (e - odd) >> 1u);
}

// m1 * 2^(k1 - k) - m2 * 2^(k2 - k), k = max(k1, k2).
fn diff_scaled(m1: f64, k1: i32, m2: f64, k2: i32) -> Frexp {
    let k = max(k1, k2);
    return Frexp(m1 * pow2(k1 - k) - m2 * pow2(k2 - k), k);
}

// m1 * 2^(k1 - k) + m2 * 2^(k2 - k), k = max(k1, k2).
fn sum_scaled(m1: f64, k1: i32, m2: f64, k2: i32) -> Frexp {
    let k = max(k1, k2);
    return Frexp(m1 * pow2(k1 - k) + m2 * pow2(k2 - k), k);
}

// x + y = h + l exactly for |x| >= |y| (Fast2Sum with s - x on the bit patterns).
fn fast_two_sum(x: f64, y: f64) -> Pair2 {
    let s = x + y;
    let ax = abs(x);
    let asum = abs(s);
    let same = (s > 0.0) == (x > 0.0);
    let ok = same && asum >= 0.5 * ax && 0.5 * asum <= ax && ax >= F64_MIN_NORMAL && asum >= F64_MIN_NORMAL;
    let z_abs = exact_sub(asum, ax);
    let z = select(z_abs, -z_abs, x < 0.0);
    return Pair2(s, select(0.0, y - z, ok));
}

// x * y = h + l for positive x, y: every partial product exact, the
// cancelling difference xh * yh - p on the bit patterns.
fn two_prod(x: f64, y: f64) -> Pair2 {
    let p = x * y;
    let xh = split_hi(x);
    let xl = x - xh;
    let yh = split_hi(y);
    let yl = y - yh;
    return Pair2(p, (exact_sub(xh * yh, p) + (xh * yl + xl * yh)) + xl * yl);
}

// m^2 = h + l, h exact.
fn square_dw(m: f64) -> Pair2 {
    let a = split_hi(m);
    let b = m - a;
    return Pair2(a * a, 2.0 * a * b + b * b);
}

struct ExpTri {
    k: i32,
    h: f64,
    l: f64,
}

// e^x ~ 2^k * (h + l) to about 2^-59: r = rh - rl kept in two parts, the
// large terms of 1 + rh + rh^2/2 + ... added exactly.
fn exp_tri(x: f64) -> ExpTri {
    let xc = clampf(x, -EXP_ARG_MAX, EXP_ARG_MAX);
    let kf = round_even(xc * INV_LN2);
    let rh = xc - kf * EXP_LN2_HI;
    let rl = kf * EXP_LN2_LO;
    let ar = abs(rh);
    let sq = two_prod(ar, ar);
    let qh = 0.5 * sq.h;
    let ql = 0.5 * sq.l + sq.h * rh * taylor_tail2(rh);
    let uv = fast_two_sum(1.0, rh);
    let hv = fast_two_sum(uv.h, qh);
    let l = ((uv.l + hv.l) + ql) + (0.5 * rl * rl - rl) * (1.0 + rh + (qh + ql));
    let k = select(select(i32(kf), -SAT_EXP, x < -EXP_ARG_MAX), SAT_EXP, x > EXP_ARG_MAX);
    return ExpTri(k, hv.h, l);
}

// y * 2^e for any e.
fn scale2(y: f64, e: i32) -> f64 {
    let e1 = e >> 1u;
    return y * pow2(e1) * pow2(e - e1);
}

// A pair in the internal representation (see src/math.rs, struct Prep).
struct Prep {
    valid: bool,
    ln1: f64,
    ln2: f64,
    q1: f64,
    e1: i32,
    q2: f64,
    e2: i32,
    p: f64,
    pe: i32,
    pr: f64,
    pre: i32,
    ln_rho: f64,
    hl: f64,
    hl_inf: bool,
    near: bool,
    w: f64,
    v_near: f64,
    rv_near: f64,
    ds: f64,
    dse: i32,
    sh: f64,
    sl: f64,
    se: i32,
    gh: f64,
    gl: f64,
    ge: i32,
}

fn is_valid_sigma(bits: u64) -> bool {
    // 0 < a <= F64_MAX: positive sign, not zero, exponent field not all ones.
    return bits - 1lu < 0x7feffffffffffffflu;
}

fn is_finite_bits(bits: u64) -> bool {
    return (bits & INF_BITS) != INF_BITS;
}

// sigma given.
fn prep_std(b1: u64, b2: u64, mh: f64, kd: i32) -> Prep {
    let f1 = frexp1(b1);
    let f2 = frexp1(b2);
    let m1 = f1.m;
    let k1 = f1.k;
    let m2 = f2.m;
    let k2 = f2.k;
    let kk = k1 - k2;
    let kc = clamp(kk, -1, 1);
    let a = pow2(kc) * m1;
    let near = kk == kc && a <= 2.0 * m2 && 2.0 * a >= m2;
    let w = (a - m2) / (a + m2);
    let r = m1 / m2;
    let rr = m2 / m1;
    let ln_rho = ln_scaled(r, kk);
    let q2 = mh / m2;
    let q1 = mh / m1;
    let d = diff_scaled(m1, k1, m2, k2);
    let em = max(k1, k2);
    let s1 = square_dw(m1);
    let s2 = square_dw(m2);
    let c1 = pow2(2 * (k1 - em));
    let c2 = pow2(2 * (k2 - em));
    let sa = s1.h * c1;
    let sb = s2.h * c2;
    let sh = fast_two_sum(select(sb, sa, sa >= sb), select(sa, sb, sa >= sb));
    return Prep(
        is_valid_sigma(b1) && is_valid_sigma(b2),
        ln_scaled(m1, k1),
        ln_scaled(m2, k2),
        q1 * q1,
        2 * (kd - k1),
        q2 * q2,
        2 * (kd - k2),
        r * r,
        2 * kk,
        rr * rr,
        -2 * kk,
        ln_rho,
        0.5 * ln_rho,
        false,
        near,
        w,
        scale_part_near(w),
        scale_part_near(-w),
        abs(d.m),
        d.k,
        sh.h,
        sh.l + (s1.l * c1 + s2.l * c2),
        2 * em,
        1.0,
        0.0,
        0,
    );
}

// (q, e) with q * 2^e unchanged and q < 4 (so that the flush of pow2 below
// the normal range loses nothing representable in q/2 * 2^e).
fn norm_q(q: f64, e: i32) -> Frexp {
    let big = q >= 2.0 * 2.0;
    return Frexp(select(q, 0.5 * q, big), e + select(0, 1, big));
}

struct SumDw {
    h: f64,
    l: f64,
    k: i32,
}

// n1 * 2^k1 + n2 * 2^k2 = (h + l) * 2^k exactly.
fn sum_dw(n1: f64, k1: i32, n2: f64, k2: i32) -> SumDw {
    let k = max(k1, k2);
    let a = n1 * pow2(k1 - k);
    let b = n2 * pow2(k2 - k);
    let hl = fast_two_sum(select(b, a, a >= b), select(a, b, a >= b));
    return SumDw(hl.h, hl.l, k);
}

struct Ratio {
    p: f64,
    pe: i32,
    pr: f64,
    pre: i32,
    ln_rho: f64,
    near: bool,
    w: f64,
    v_near: f64,
    rv_near: f64,
}

// rho^2 = n / d for squares of scales (variances; or precisions swapped).
fn ratio_sq(nm: f64, nk: i32, dm: f64, dk: i32) -> Ratio {
    let e = nk - dk;
    let ec = clamp(e, -3, 3);
    let vv = pow2(ec) * nm;
    let four: f64 = 2.0 * 2.0;
    let near = e == ec && vv <= four * dm && four * vv >= dm;
    let u = (vv - dm) / (vv + dm);
    let w = u / (1.0 + sqrt64(1.0 - u * u));
    let p = nm / dm;
    let pr = dm / nm;
    let ln_rho = 0.5 * ln_scaled(p, e);
    return Ratio(p, e, pr, -e, ln_rho, near, w, scale_part_u(u), scale_part_u(-u));
}

// sigma^2 given.
fn prep_var(b1: u64, b2: u64, mh: f64, kd: i32) -> Prep {
    let f1 = frexp1(b1);
    let f2 = frexp1(b2);
    let mv1 = f1.m;
    let kv1 = f1.k;
    let mv2 = f2.m;
    let kv2 = f2.k;
    let rs = ratio_sq(mv1, kv1, mv2, kv2);
    let s1 = sqrt_exp(mv1, kv1);
    let s2 = sqrt_exp(mv2, kv2);
    let dv = diff_scaled(mv1, kv1, mv2, kv2);
    let ss = sum_scaled(s1.m, s1.k, s2.m, s2.k);
    let mh2 = mh * mh;
    let sd = sum_dw(mv1, kv1, mv2, kv2);
    return Prep(
        is_valid_sigma(b1) && is_valid_sigma(b2),
        0.5 * ln_scaled(mv1, kv1),
        0.5 * ln_scaled(mv2, kv2),
        mh2 / mv1,
        2 * kd - kv1,
        mh2 / mv2,
        2 * kd - kv2,
        rs.p,
        rs.pe,
        rs.pr,
        rs.pre,
        rs.ln_rho,
        0.5 * rs.ln_rho,
        false,
        rs.near,
        rs.w,
        rs.v_near,
        rs.rv_near,
        abs(dv.m) / ss.m,
        dv.k - ss.k,
        sd.h,
        sd.l,
        sd.k,
        1.0,
        0.0,
        0,
    );
}

// 1/sigma^2 given.
fn prep_precision(b1: u64, b2: u64, mh: f64, kd: i32) -> Prep {
    let f1 = frexp1(b1);
    let f2 = frexp1(b2);
    let mp1 = f1.m;
    let kp1 = f1.k;
    let mp2 = f2.m;
    let kp2 = f2.k;
    let rs = ratio_sq(mp2, kp2, mp1, kp1);
    let t1 = sqrt_exp(mp1, kp1);
    let t2 = sqrt_exp(mp2, kp2);
    let dp = diff_scaled(mp2, kp2, mp1, kp1);
    let st = sum_scaled(t1.m, t1.k, t2.m, t2.k);
    let n1 = norm_q(mh * mh * mp1, 2 * kd + kp1);
    let n2 = norm_q(mh * mh * mp2, 2 * kd + kp2);
    let sd = sum_dw(mp1, kp1, mp2, kp2);
    let g = two_prod(mp1, mp2);
    return Prep(
        is_valid_sigma(b1) && is_valid_sigma(b2),
        -0.5 * ln_scaled(mp1, kp1),
        -0.5 * ln_scaled(mp2, kp2),
        n1.m,
        n1.k,
        n2.m,
        n2.k,
        rs.p,
        rs.pe,
        rs.pr,
        rs.pre,
        rs.ln_rho,
        0.5 * rs.ln_rho,
        false,
        rs.near,
        rs.w,
        rs.v_near,
        rs.rv_near,
        abs(dp.m) / (t1.m * t2.m * st.m),
        dp.k - t1.k - t2.k - st.k,
        sd.h,
        sd.l,
        sd.k,
        g.h,
        g.l,
        kp1 + kp2,
    );
}

// ln sigma (logvar false) or ln sigma^2 (logvar true) given.
fn prep_log(b1: u64, b2: u64, mh: f64, kd: i32, logvar: bool) -> Prep {
    let a1 = bitcast<f64>(b1);
    let a2 = bitcast<f64>(b2);
    let s1 = select(a1, 0.5 * a1, logvar);
    let s2 = select(a2, 0.5 * a2, logvar);
    let hl = 0.5 * s1 - 0.5 * s2;
    let half_max = 0.5 * F64_MAX;
    let hl_inf = abs(hl) > half_max;
    let ln_rho = 2.0 * clampf(hl, -half_max, half_max);
    let lim = EXP_ARG_MAX;
    let s1c = clampf(s1, -lim, lim);
    let s2c = clampf(s2, -lim, lim);
    let iv1 = exp_sat(-2.0 * s1c);
    let iv2 = exp_sat(-2.0 * s2c);
    let sq1 = exp_split(2.0 * s1c);
    let sq2 = exp_split(2.0 * s2c);
    let small = abs(s1) <= LOG_BIG && abs(s2) <= LOG_BIG;
    let hx = clampf(hl, -lim, lim);
    let pb = exp_sat(2.0 * 2.0 * hx);
    let pbr = exp_sat(-2.0 * 2.0 * hx);
    let near = abs(hl) <= HALF_LN2;
    let em = expm1(select(0.0, ln_rho, near));
    let xm = exp_sat(select(s2c, s1c, s1c > s2c));
    let mh2 = mh * mh;
    let n1 = norm_q(mh2 * iv1.m, 2 * kd + iv1.k);
    let n2 = norm_q(mh2 * iv2.m, 2 * kd + iv2.k);
    let x1 = exp_tri(2.0 * s1c);
    let x2 = exp_tri(2.0 * s2c);
    let sd = sum_dw(x1.h, x1.k, x2.h, x2.k);
    let sl = sd.l + (x1.l * pow2(x1.k - sd.k) + x2.l * pow2(x2.k - sd.k));
    // Near rho = 1: V = (ln rho)^2 * phi2(2 ln rho), phi2(x) = 2(e^x - 1 - x)/x^2.
    let lrn = select(0.0, ln_rho, near);
    let l2r = lrn * lrn;
    let v_near = l2r * (2.0 * taylor_tail(2.0 * lrn));
    let rv_near = l2r * (2.0 * taylor_tail(-2.0 * lrn));
    return Prep(
        is_finite_bits(b1) && is_finite_bits(b2),
        s1,
        s2,
        n1.m,
        n1.k,
        n2.m,
        n2.k,
        select(pb.m, sq1.m * iv2.m, small),
        select(pb.k, sq1.k + iv2.k, small),
        select(pbr.m, sq2.m * iv1.m, small),
        select(pbr.k, sq2.k + iv1.k, small),
        ln_rho,
        hl,
        hl_inf,
        near,
        em / (em + 2.0),
        v_near,
        rv_near,
        xm.m * -expm1(-abs(ln_rho)),
        xm.k,
        sd.h,
        sl,
        sd.k,
        1.0,
        0.0,
        0,
    );
}

// KL(p||q) = M + V from its pieces (value, and whether it exceeds F64_MAX).
// logv: log-parameters, where the rest of V may itself be huge.
fn kl_core(logv: bool, q: f64, e_m: i32, p: f64, pe: i32, v_far: f64, v_inf: bool, near: bool, v_near: f64) -> Scaled {
    let b = select(p, 0.0, near);
    let e_b = select(pe, NO_EXP, near);
    let v_rest = select(v_far, v_near, near);

    let g = max(e_m, e_b);
    // Ordinary magnitudes: sum directly.
    let m_term = scale2(0.5 * q, e_m);
    let b_term = scale2(0.5 * b, e_b);
    let kl_direct = m_term + (b_term + v_rest);
    // Large terms: summed at scale 2^-g, compared with MAX at that scale.
    let y0 = 0.5 * q * pow2(e_m - g) + 0.5 * b * pow2(e_b - g);
    var y = y0;
    if (logv) {
        y = y0 + scale2(v_rest, -g);
    }
    let hi = g - SAFE_EXP;
    let limit = F64_MAX * pow2(-SAFE_EXP) * pow2(-hi);
    let kl_scaled = y * pow2(hi) * pow2(SAFE_EXP);
    let big = g > SAFE_EXP;
    let kl_inf = v_inf || (big && (g >= MAX_EXP + 3 || y > limit));
    return Scaled(select(kl_direct, kl_scaled, big), kl_inf);
}

// atanh(t)/t - 1 for 0 <= t <= 1/9.
fn atanh_tail(t: f64) -> f64 {
    let t2 = t * t;
    return t2 * atanh_r(t2);
}

// Delta mu = mu1 - mu2 (from halves when it could overflow) and its
// magnitude mh * 2^kd (see src/math.rs, fn delta_mu).
struct DeltaMu {
    halve: bool,
    diff: f64,
    has_diff: bool,
    mh: f64,
    kh: i32,
    kd: i32,
}

fn delta_mu(mu1: f64, mu2: f64) -> DeltaMu {
    let halve = abs(mu1) > HALVE_THRESHOLD || abs(mu2) > HALVE_THRESHOLD;
    let diff = select(mu1 - mu2, 0.5 * mu1 - 0.5 * mu2, halve);
    let has_diff = diff != 0.0;
    let fh = frexp1(bitcast<u64>(select(1.0, abs(diff), has_diff)));
    return DeltaMu(halve, diff, has_diff, fh.m, fh.k, fh.k + select(0, 1, halve));
}

// Every measure of one pair, canonical order; NaN for invalid input.
// Branch-free like src/math.rs: every path computed, the right one selected
// (the branch on PARAM is on a pipeline constant).
fn measures(pv: vec4<u64>) -> array<f64, 10> {
    let mu1 = bitcast<f64>(pv.x);
    let mu2 = bitcast<f64>(pv.z);
    // Delta mu = mh * 2^kd.
    let dm = delta_mu(mu1, mu2);
    let halve = dm.halve;
    let diff = dm.diff;
    let has_diff = dm.has_diff;
    let mh = dm.mh;
    let kh = dm.kh;
    let kd = dm.kd;
    // Its rounding error: Delta mu = (mh + dl) * 2^kd.
    let xa = select(mu1, 0.5 * mu1, halve);
    let ya = select(-mu2, -0.5 * mu2, halve);
    let swap = abs(xa) < abs(ya);
    let dd = fast_two_sum(select(xa, ya, swap), select(ya, xa, swap));
    let dl = scale2(select(dd.l, -dd.l, diff < 0.0), -kh);

    var pp: Prep;
    if (PARAM == PARAM_VAR) {
        pp = prep_var(pv.y, pv.w, mh, kd);
    } else if (PARAM == PARAM_LOGSTD) {
        pp = prep_log(pv.y, pv.w, mh, kd, false);
    } else if (PARAM == PARAM_LOGVAR) {
        pp = prep_log(pv.y, pv.w, mh, kd, true);
    } else if (PARAM == PARAM_PRECISION) {
        pp = prep_precision(pv.y, pv.w, mh, kd);
    } else {
        pp = prep_std(pv.y, pv.w, mh, kd);
    }
    let valid = pp.valid && is_finite_bits(pv.x) && is_finite_bits(pv.z);
    let q1 = select(0.0, pp.q1, has_diff);
    let e1 = select(NO_EXP, pp.e1, has_diff);
    let q2 = select(0.0, pp.q2, has_diff);
    let e2 = select(NO_EXP, pp.e2, has_diff);

    // Entropies, KL both ways, cross-entropy, Jeffreys.
    let entropy = HALF_LN_2PI_E + pp.ln1;
    let entropy_q = HALF_LN_2PI_E + pp.ln2;
    let v_far = -0.5 - pp.ln_rho;
    let logv = PARAM == PARAM_LOGSTD || PARAM == PARAM_LOGVAR;
    let klr = kl_core(logv, q2, e2, pp.p, pp.pe, v_far, pp.hl_inf, pp.near, pp.v_near);
    let kl = klr.v;
    let kl_inf = klr.inf;
    // Log-parameters: H(p1, p2) via ln sigma2 where KL overflows through ln rho -> -inf.
    let m2s = scale_exp(0.5 * q2, e2);
    let ce_base = HALF_LN_2PI_E - 0.5 + pp.ln2;
    let ce_alt = ce_base + m2s.v;
    let ce_alt_inf = m2s.inf || 0.5 * ce_base + 0.5 * m2s.v > 0.5 * F64_MAX;
    let use_alt = logv && ((pp.hl_inf && pp.ln_rho < 0.0) || pp.ln_rho < -64.0);
    let ce_sum_inf = logv && 0.5 * entropy + 0.5 * kl > 0.5 * F64_MAX;
    let cross_entropy = select(entropy + kl, ce_alt, use_alt);
    let ce_inf = select(kl_inf || ce_sum_inf, ce_alt_inf, use_alt);
    let rv_far = -0.5 + pp.ln_rho;
    let rklr = kl_core(logv, q1, e1, pp.pr, pp.pre, rv_far, pp.hl_inf, pp.near, pp.rv_near);
    let rkl = rklr.v;
    let rkl_inf = rklr.inf;

    // rho_s = sigma_small / sigma_big <= 1.
    let side1 = pp.ln_rho >= 0.0;
    let ps = select(pp.p, pp.pr, side1);
    let pes = select(pp.pe, pp.pre, side1);
    let rs2 = ps * pow2(pes);
    let one_rs2 = 1.0 + rs2;

    // Jeffreys: one evaluation of the KL shape (the ln rho terms cancel exactly).
    let ej = max(e1, e2);
    let nj = norm_q(q1 * pow2(e1 - ej) + q2 * pow2(e2 - ej), ej);
    let jr = kl_core(
        logv,
        nj.m,
        select(NO_EXP, nj.k, has_diff),
        select(pp.pr, pp.p, side1),
        select(pp.pre, pp.pe, side1),
        0.5 * rs2 - 1.0,
        pp.hl_inf,
        pp.near,
        pp.v_near + pp.rv_near,
    );
    let jeffreys = jr.v;
    let jeffreys_inf = jr.inf;

    // Bhattacharyya distance D_B = X + ln cosh(ln rho)/2, X = (Delta mu)^2/(4(s1^2 + s2^2)).
    let qs = select(q2, q1, side1);
    let es = select(e2, e1, side1);
    let xm = 0.5 * 0.5 * qs / one_rs2;
    let xs = scale_exp(xm, es);
    let x = xs.v;
    let x_inf = xs.inf;
    let t = pp.w * pp.w;
    let at_tail = atanh_tail(t);
    let lp_near = t + t * at_tail;
    let sg = rs2 / (2.0 + rs2);
    let log1p = 2.0 * sg + 2.0 * sg * atanh_tail(sg);
    let lp_far = ((abs(pp.hl) - 0.5 * LN2_HI) - 0.5 * LN2_LO) + 0.5 * log1p;
    let lp = select(lp_far, lp_near, pp.near);
    let bhattacharyya = x + lp;

    // Coefficient exp(-X) * sqrt(sech ln rho), X in two-float accuracy.
    let na = split_hi(mh);
    let nb = mh - na;
    let nh = na * na;
    let nl = (2.0 * na * nb + nb * nb) + 2.0 * mh * dl;
    let gpr = two_prod(nh, pp.gh);
    var ph = nh;
    var pl = nl;
    if (PARAM == PARAM_PRECISION) {
        ph = gpr.h;
        pl = gpr.l + (nh * pp.gl + nl * pp.gh);
    }
    let shl = fast_two_sum(pp.sh, pp.sl);
    let sh = shl.h;
    let sl = shl.l;
    // Quotient truncated by a bit mask (a compiler may rewrite (a/b)*b as a,
    // or reassociate the residual, but not through integer operations); the
    // residual gives the correction.
    let qx = split_hi((ph + pl) / sh);
    let qpe = two_prod(qx, sh);
    let cx = (((exact_sub(ph, qpe.h) + pl) - qpe.l) - qx * sl) / sh;
    let xqc = fast_two_sum(qx, cx);
    let xe = 2 * kd + pp.ge - pp.se;
    let xh = select(0.0, scale2(0.5 * 0.5 * xqc.h, xe), has_diff);
    let xl = select(0.0, scale2(0.5 * 0.5 * xqc.l, xe), has_diff);
    let x_big = x_inf || xh > EXP_ARG_MAX;
    let exs = exp_split(-select(xh, EXP_ARG_MAX, x_big));
    let ex = exs.m * (1.0 - select(xl, 0.0, x_big));

    let f_near = sqrt64((1.0 - t) / (1.0 + t));
    let rhos = sqrt_exp(ps, pes);
    let ffar = sqrt_exp(2.0 * rhos.m / one_rs2, rhos.k);
    let fm = select(ffar.m, f_near, pp.near);
    let fe = select(ffar.k, 0, pp.near);
    let coefficient = scale_exp(ex * fm, exs.k + fe).v;

    // Hellinger sqrt(1 - e^-D): sqrt(D) * sqrt(phi(D)) for D < 1/2, else directly.
    let sx = sqrt_exp(xm, es);
    let ha = scale2(sx.m, sx.k);
    let hb = select(sqrt64(lp_far), abs(pp.w) * sqrt64(1.0 + at_tail), pp.near);
    let hmax = select(hb, ha, ha > hb);
    let hmin = select(ha, hb, ha > hb);
    let ratio = hmin / select(1.0, hmax, hmax > 0.0);
    let sqrt_d = hmax * sqrt64(1.0 + ratio * ratio);
    let small = !x_inf && bhattacharyya < 0.5;
    let phi = taylor(-bhattacharyya);
    let h_small = sqrt_d * sqrt64(phi);
    let eds = exp_split(-select(select(bhattacharyya, EXP_ARG_MAX, x_inf), 0.0, small));
    let h_large = sqrt64(1.0 - eds.m * pow2(eds.k));
    let hellinger = select(h_large, h_small, small);

    // Wasserstein-2: hypot(Delta mu, sigma1 - sigma2) at a common power-of-two scale.
    let has_ds = pp.ds > 0.0;
    let fds = frexp1(bitcast<u64>(select(1.0, pp.ds, has_ds)));
    let kmu = select(NO_EXP, kd, has_diff);
    let ksd = select(NO_EXP, pp.dse + fds.k, has_ds);
    let km = max(kmu, ksd);
    let wa = select(0.0, mh, has_diff) * pow2(kmu - km);
    let wb = select(0.0, fds.m, has_ds) * pow2(ksd - km);
    let w2s = scale_exp(sqrt64(wa * wa + wb * wb), km);
    // |Delta mu| just above F64_MAX by more than 2^-54 of it: still +inf.
    let amu1 = abs(mu1);
    let amu2 = abs(mu2);
    let big_mu = select(amu2, amu1, amu1 > amu2);
    let small_mu = select(amu1, amu2, amu1 > amu2);
    let same_sign = (mu1 > 0.0 && mu2 > 0.0) || (mu1 < 0.0 && mu2 < 0.0);
    let opposite = !same_sign;
    let excess = (0.5 * big_mu - 0.5 * F64_MAX) + 0.5 * small_mu;
    let w2_inf = w2s.inf || (opposite && big_mu >= 0.5 * F64_MAX && excess > scale2(F64_MAX, -55));

    let inf = bitcast<f64>(INF_BITS);
    let nan = bitcast<f64>(NAN_BITS);
    var out = array<f64, 10>(
        select(cross_entropy, inf, ce_inf),
        select(kl, inf, kl_inf),
        entropy,
        entropy_q,
        select(rkl, inf, rkl_inf),
        select(jeffreys, inf, jeffreys_inf),
        select(bhattacharyya, inf, x_inf),
        coefficient,
        hellinger,
        select(w2s.v, inf, w2_inf),
    );
    if (!valid) {
        out = array<f64, 10>(nan, nan, nan, nan, nan, nan, nan, nan, nan, nan);
    }
    return out;
}

// Number of selected measures (values per row).
fn selected_count() -> u32 {
    return select(0u, 1u, WRITE_CE) + select(0u, 1u, WRITE_KL) + select(0u, 1u, WRITE_ENTROPY)
        + select(0u, 1u, WRITE_ENTROPY_Q) + select(0u, 1u, WRITE_REVERSE_KL) + select(0u, 1u, WRITE_JEFFREYS)
        + select(0u, 1u, WRITE_BHATTACHARYYA) + select(0u, 1u, WRITE_BHATTACHARYYA_COEFFICIENT)
        + select(0u, 1u, WRITE_HELLINGER) + select(0u, 1u, WRITE_WASSERSTEIN2);
}

// Write the selected measures of row i, canonical order.
fn write_row(i: u32, d: array<f64, 10>) {
    write_values(i * selected_count(), d);
}

// Write the selected measures, canonical order, from results[o0].
fn write_values(o0: u32, d: array<f64, 10>) {
    var o = o0;
    if (WRITE_CE) {
        results[o] = d[0];
        o = o + 1u;
    }
    if (WRITE_KL) {
        results[o] = d[1];
        o = o + 1u;
    }
    if (WRITE_ENTROPY) {
        results[o] = d[2];
        o = o + 1u;
    }
    if (WRITE_ENTROPY_Q) {
        results[o] = d[3];
        o = o + 1u;
    }
    if (WRITE_REVERSE_KL) {
        results[o] = d[4];
        o = o + 1u;
    }
    if (WRITE_JEFFREYS) {
        results[o] = d[5];
        o = o + 1u;
    }
    if (WRITE_BHATTACHARYYA) {
        results[o] = d[6];
        o = o + 1u;
    }
    if (WRITE_BHATTACHARYYA_COEFFICIENT) {
        results[o] = d[7];
        o = o + 1u;
    }
    if (WRITE_HELLINGER) {
        results[o] = d[8];
        o = o + 1u;
    }
    if (WRITE_WASSERSTEIN2) {
        results[o] = d[9];
    }
}

fn invocation_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * WORKGROUP_SIZE + lid;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = invocation_index(wid, nwg, lid);
    if (i >= arrayLength(&pairs)) {
        return;
    }
    write_row(i, measures(pairs[i]));
}
