// gaussdiv: our own logarithm and exponential, and the scaled and
// error-free arithmetic the formulas are built from (docs/ARCHITECTURE.md
// §2.3, §2.11).
//
// KEEP IN SYNC with src/math/ln_exp.rs: the f32 and f64 instantiations of
// every function there, step for step (same names, same order of
// operations). The polynomials whose length depends on the precision
// (ln_poly, exp_poly, atanh_r, atanh_r_wide, taylor_tail2) and the format's
// primitives (frexp1, pow2, split_hi, exact_sub, sqrt_f, round_even) come
// from the precision prelude (prelude_f32.wgsl / prelude_f64.wgsl).
//
// Written against the prelude's aliases: F is the float type, U its bit
// pattern. Literals are abstract (0.5, 2.0, ...: powers of two and small
// integers, exact in both formats) and take the type F from the expression
// they appear in; a `let` of literals alone is annotated `: F`.

const NO_EXP: i32 = -100000;
const SAT_EXP: i32 = 1048576; // 1 << 20: exponent of a saturated exp


struct Frexp {
    m: F, // in [1, 2) for frexp1; a mantissa of bounded range elsewhere
    k: i32,
}

struct Pair2 {
    h: F,
    l: F,
}

// ln(x * 2^k) for positive normal x: fdlibm's reduction and polynomial.
fn ln_scaled(x: F, k: i32) -> F {
    let fr = frexp1(bitcast<U>(x));
    let high = fr.m > SQRT2;
    let m = select(fr.m, fr.m * 0.5, high);
    let e = fr.k + select(0, 1, high);
    let dk = F(e + k);
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let r = z * ln_poly(z);
    let hfsq = 0.5 * f * f;
    return dk * LN2_HI - ((hfsq - (s * (hfsq + r) + dk * LN2_LO)) - f);
}

// V(rho) = (rho^2 - 1)/2 - ln(rho) from w = (rho - 1)/(rho + 1), |w| <= 1/3.
fn scale_part_near(w: F) -> F {
    let t = w * w;
    let one_minus_w = 1.0 - w;
    let lead = (2.0 - w) / (one_minus_w * one_minus_w);
    let tail = w * atanh_r(t);
    return 2.0 * t * (lead - tail);
}

fn clampf(x: F, lo: F, hi: F) -> F {
    return select(select(x, lo, x < lo), hi, x > hi);
}

// 1/1! + x/2! + ... + x^11/12!
fn taylor(x: F) -> F {
    return T1 + x * taylor_tail(x);
}

// 1/2! + x/3! + ... + x^10/12!
fn taylor_tail(x: F) -> F {
    return T2 + x * taylor_tail2(x);
}

// (y, k) with e^x ~ y * 2^k, y in [sqrt(1/2), sqrt(2)]: fdlibm's exp without the final scaling.
fn exp_split(x: F) -> Frexp {
    let xc = clampf(x, -EXP_ARG_MAX, EXP_ARG_MAX);
    let kf = round_even(xc * INV_LN2);
    let k = i32(kf);
    let hi = xc - kf * EXP_LN2_HI;
    let lo = kf * EXP_LN2_LO;
    let r = hi - lo;
    let t = r * r;
    let c = r - t * exp_poly(t);
    let y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
    return Frexp(y, k);
}

// exp_split with the exponent saturated to +-SAT_EXP beyond +-EXP_ARG_MAX.
fn exp_sat(x: F) -> Frexp {
    let e = exp_split(x);
    return Frexp(e.m, select(select(e.k, -SAT_EXP, x < -EXP_ARG_MAX), SAT_EXP, x > EXP_ARG_MAX));
}

// e^x - 1, accurate relative to the result for every x.
fn expm1(x: F) -> F {
    let small = abs(x) <= 0.5;
    let series = x * taylor(x);
    let e = exp_split(x);
    let big = e.m * pow2(e.k) - 1.0;
    return select(big, series, small);
}

struct Scaled {
    v: F,
    inf: bool,
}

// y * 2^e and whether it exceeds F_MAX (0 <= y <= 2^8, any e).
fn scale_exp(y: F, e: i32) -> Scaled {
    let e1 = e >> 1u;
    let e2 = e - e1;
    let v = y * pow2(e1) * pow2(e2);
    let inf = e > MAX_EXP + 8 || (e > MAX_EXP - 16 && y > F_MAX * pow2(-e1) * pow2(-e2));
    return Scaled(v, inf);
}

// sqrt(m * 2^e) as s * 2^f.
fn sqrt_exp(m: F, e: i32) -> Frexp {
    let odd = e & 1;
    return Frexp(sqrt_f(select(m, 2.0 * m, odd != 0)), (e - odd) >> 1u);
}

// m1 * 2^(k1 - k) - m2 * 2^(k2 - k), k = max(k1, k2).
fn diff_scaled(m1: F, k1: i32, m2: F, k2: i32) -> Frexp {
    let k = max(k1, k2);
    return Frexp(m1 * pow2(k1 - k) - m2 * pow2(k2 - k), k);
}

// m1 * 2^(k1 - k) + m2 * 2^(k2 - k), k = max(k1, k2).
fn sum_scaled(m1: F, k1: i32, m2: F, k2: i32) -> Frexp {
    let k = max(k1, k2);
    return Frexp(m1 * pow2(k1 - k) + m2 * pow2(k2 - k), k);
}

// x + y = h + l exactly for |x| >= |y| (Fast2Sum with s - x on the bit patterns).
fn fast_two_sum(x: F, y: F) -> Pair2 {
    let s = x + y;
    let ax = abs(x);
    let asum = abs(s);
    let same = (s > 0.0) == (x > 0.0);
    let ok = same && asum >= 0.5 * ax && 0.5 * asum <= ax && ax >= F_MIN_NORMAL && asum >= F_MIN_NORMAL;
    let z_abs = exact_sub(asum, ax);
    let z = select(z_abs, -z_abs, x < 0.0);
    return Pair2(s, select(0.0, y - z, ok));
}

// x * y = h + l for positive x, y: every partial product exact, the
// cancelling difference xh * yh - p on the bit patterns, then Dekker's
// order, in which every partial sum is exact.
fn two_prod(x: F, y: F) -> Pair2 {
    let p = x * y;
    let xh = split_hi(x);
    let xl = x - xh;
    let yh = split_hi(y);
    let yl = y - yh;
    return Pair2(p, ((exact_sub(xh * yh, p) + xh * yl) + xl * yh) + xl * yl);
}

// m^2 = h + l, h exact.
fn square_dw(m: F) -> Pair2 {
    let a = split_hi(m);
    let b = m - a;
    return Pair2(a * a, 2.0 * a * b + b * b);
}

struct ExpTri {
    k: i32,
    h: F,
    l: F,
}

// e^x ~ 2^k * (h + l) to about 2^-30: r = rh - rl kept in two parts, the
// large terms of 1 + rh + rh^2/2 + ... added exactly.
fn exp_tri(x: F) -> ExpTri {
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
fn scale2(y: F, e: i32) -> F {
    let e1 = e >> 1u;
    return y * pow2(e1) * pow2(e - e1);
}
