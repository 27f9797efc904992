// gaussdiv: cross-entropy, KL divergence and entropy of Gaussian pairs, in f64.
//
// KEEP IN SYNC with src/math.rs (the f64 instantiation of `divergences`,
// `ln_scaled`, `scale_part_near`, `frexp1`, `pow2`: same steps, same order,
// same constants), with shaders/divergence.wgsl (the f32 kernel: this file is
// its f64 twin, line for line) and with src/pair.rs (GaussianPair64 = 32 bytes
// mu1, sigma1, mu2, sigma2; output = the selected metrics in the order
// cross_entropy, kl, entropy, 8 bytes each — Divergences64 for all three).
//
// Requires the device features SHADER_F64 (the f64 type) and SHADER_INT64
// (u64: the inputs are read as bits, frexp and pow2 are bit manipulation).
// No builtin log/exp/pow on f64: GLSL.std.450 defines them for 16- and
// 32-bit floats only, and on lavapipe they compile and run silently wrong
// (DESIGN §2.6). Only +, -, *, /, comparisons, select, abs and conversions.
// countLeadingZeros on u64 is not supported by naga 30 (gfx-rs/wgpu#5276):
// the 52-bit fraction is split into two u32 halves.
//
// One invocation per pair, a 2-D grid of workgroups, every invocation
// bounds-checked against arrayLength(&pairs) — as in the f32 kernel.
//
// No reliance on inf/NaN arithmetic: overflow is detected by comparisons on
// finite values and +inf / NaN are written as bit patterns. σ is read and
// decomposed with integer operations only, so subnormal σ is exact even on
// devices that flush subnormal doubles (lavapipe does). Subnormal μ or
// μ1 − μ2 may flush: the host path recomputes those rows on the CPU.

override WORKGROUP_SIZE: u32 = 256u;
override WRITE_CE: bool = true;
override WRITE_KL: bool = true;
override WRITE_ENTROPY: bool = true;

// Entry point `main` (array of pairs) uses bindings 0 and 1, the layout of
// the f32 kernel's `main` (one bind group layout serves both).
@group(0) @binding(0) var<storage, read> pairs: array<vec4<u64>>;
@group(0) @binding(1) var<storage, read_write> results: array<f64>;

const NO_EXP: i32 = -100000;
const F64_MAX: f64 = 1.7976931348623157e+308;
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
const ONE_BITS: u64 = 0x3ff0000000000000lu;

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

struct Frexp {
    m: f64, // in [1, 2)
    k: i32,
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

// V(rho) = (rho^2 - 1)/2 - ln(rho) from w = (rho - 1)/(rho + 1), |w| <= 1/3.
fn scale_part_near(w: f64) -> f64 {
    let t = w * w;
    let one_minus_w = 1.0 - w;
    let lead = (2.0 - w) / (one_minus_w * one_minus_w);
    let r = R0 + t * (R1 + t * (R2 + t * (R3 + t * (R4 + t * (R5 + t * (R6 + t * (R7 + t * (R8
        + t * (R9 + t * (R10 + t * (R11 + t * (R12 + t * (R13 + t * (R14 + t * R15))))))))))))));
    let tail = w * r;
    return 2.0 * t * (lead - tail);
}

fn is_valid_sigma(bits: u64) -> bool {
    // 0 < sigma <= F64_MAX: positive sign, not zero, exponent field not all ones.
    return bits - 1lu < 0x7feffffffffffffflu;
}

fn is_finite_bits(bits: u64) -> bool {
    return (bits & INF_BITS) != INF_BITS;
}

// (cross_entropy, kl, entropy) of one pair; NaN for invalid input.
// Branch-free like src/math.rs: every path computed, the right one selected.
fn divergences(p: vec4<u64>) -> vec3<f64> {
    let valid = is_valid_sigma(p.y) && is_valid_sigma(p.w) && is_finite_bits(p.x) && is_finite_bits(p.z);
    let mu1 = bitcast<f64>(p.x);
    let mu2 = bitcast<f64>(p.z);
    let f1 = frexp1(p.y);
    let f2 = frexp1(p.w);
    let m1 = f1.m;
    let m2 = f2.m;
    let kk = f1.k - f2.k;

    // Entropy of p1.
    let entropy = HALF_LN_2PI_E + ln_scaled(m1, f1.k);

    // Mean part M = q^2/2 * 2^e_m.
    let halve = abs(mu1) > HALVE_THRESHOLD || abs(mu2) > HALVE_THRESHOLD;
    let diff = select(mu1 - mu2, 0.5 * mu1 - 0.5 * mu2, halve);
    let has_diff = diff != 0.0;
    let fh = frexp1(bitcast<u64>(select(1.0, abs(diff), has_diff)));
    let q = select(0.0, fh.m / m2, has_diff);
    let e_m = select(NO_EXP, 2 * (fh.k - f2.k + select(0, 1, halve)), has_diff);

    // Scale part V = r^2/2 * 2^e_b + v_rest; near rho = 1 the series, else rho^2/2 - 1/2 - ln rho.
    let kc = clamp(kk, -1, 1);
    let a = pow2(kc) * m1;
    let near = kk == kc && a <= 2.0 * m2 && 2.0 * a >= m2;
    let w = (a - m2) / (a + m2);
    let v_near = scale_part_near(w);
    let r_far = m1 / m2;
    let v_far = -0.5 - ln_scaled(r_far, kk);
    let r = select(r_far, 0.0, near);
    let e_b = select(2 * kk, NO_EXP, near);
    let v_rest = select(v_far, v_near, near);

    let g = max(e_m, e_b);
    // Ordinary magnitudes: sum directly.
    let m_term = 0.5 * q * q * pow2(e_m);
    let b_term = 0.5 * r * r * pow2(e_b);
    let kl_direct = m_term + (b_term + v_rest);
    // Large terms: summed at scale 2^-g, compared with MAX at that scale.
    let y = 0.5 * q * q * pow2(e_m - g) + 0.5 * r * r * pow2(e_b - g);
    let hi = g - SAFE_EXP;
    let limit = F64_MAX * pow2(-SAFE_EXP) * pow2(-hi);
    let kl_scaled = y * pow2(hi) * pow2(SAFE_EXP);
    let big = g > SAFE_EXP;
    let kl_inf = big && (g >= MAX_EXP + 3 || y > limit);
    let kl = select(kl_direct, kl_scaled, big);

    let inf = bitcast<f64>(INF_BITS);
    let nan = bitcast<f64>(NAN_BITS);
    let cross_entropy = entropy + kl;
    let ce = select(cross_entropy, inf, kl_inf);
    let kl_out = select(kl, inf, kl_inf);
    return select(vec3<f64>(nan, nan, nan), vec3<f64>(ce, kl_out, entropy), valid);
}

// Write the selected metrics of row i, canonical order.
fn write_row(i: u32, d: vec3<f64>) {
    let k = select(0u, 1u, WRITE_CE) + select(0u, 1u, WRITE_KL) + select(0u, 1u, WRITE_ENTROPY);
    var o = i * k;
    if (WRITE_CE) {
        results[o] = d.x;
        o = o + 1u;
    }
    if (WRITE_KL) {
        results[o] = d.y;
        o = o + 1u;
    }
    if (WRITE_ENTROPY) {
        results[o] = d.z;
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
    write_row(i, divergences(pairs[i]));
}
