// gaussdiv: cross-entropy, KL divergence and entropy of Gaussian pairs.
//
// KEEP IN SYNC with src/math.rs (the f32 instantiation of `divergences`,
// `ln_scaled`, `scale_part_near`, `frexp1`, `pow2`: same steps, same order,
// same constants) and with src/pair.rs (GaussianPair = 16 bytes
// mu1, sigma1, mu2, sigma2; output = the selected metrics in the order
// cross_entropy, kl, entropy, 4 bytes each).
//
// KEEP IN SYNC with shaders/divergence_f64.wgsl, this kernel's f64 twin
// (the f64 instantiation of src/math.rs, line for line like this one).
//
// One invocation per pair. The dispatch is a 2-D grid of workgroups
// (x ≤ max_compute_workgroups_per_dimension); every invocation is bounds-checked
// against arrayLength(&pairs), i.e. the bound range of the input binding.
//
// No reliance on inf/NaN arithmetic: overflow is detected by comparisons on
// finite values and +inf / NaN are written as bit patterns. σ is read and
// decomposed with integer operations only, so subnormal σ is exact even on
// devices that flush subnormal floats. (Subnormal μ or μ1 − μ2 may flush: the
// host path recomputes those rows on the CPU.)

override WORKGROUP_SIZE: u32 = 256u;
override WRITE_CE: bool = true;
override WRITE_KL: bool = true;
override WRITE_ENTROPY: bool = true;

// Entry point `main` (array of pairs) uses bindings 0 and 1; `main_soa`
// (structure of arrays: four arrays of f32 bits) uses bindings 1 to 5.
@group(0) @binding(0) var<storage, read> pairs: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> results: array<f32>;
@group(0) @binding(2) var<storage, read> mu1_in: array<u32>;
@group(0) @binding(3) var<storage, read> sigma1_in: array<u32>;
@group(0) @binding(4) var<storage, read> mu2_in: array<u32>;
@group(0) @binding(5) var<storage, read> sigma2_in: array<u32>;

const NO_EXP: i32 = -100000;
const F32_MAX: f32 = 3.40282347e+38;
const SQRT2: f32 = 1.41421356237309504880;
const LN2_HI: f32 = 6.9313812256e-01; // 0x3f317180
const LN2_LO: f32 = 9.0580006145e-06; // 0x3717f7d1
const HALF_LN_2PI_E: f32 = 1.4189385332046727417803297364;
const HALVE_THRESHOLD: f32 = 8.50705917e+37; // F32_MAX * 0.25
const MAX_EXP: i32 = 128;
const MIN_EXP: i32 = -126;
const SAFE_EXP: i32 = 64;
const INF_BITS: u32 = 0x7f800000u;
const NAN_BITS: u32 = 0x7fc00000u;

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

struct Frexp {
    m: f32, // in [1, 2)
    k: i32,
}

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

// ln(x * 2^k) for positive normal x: fdlibm's reduction and polynomial.
fn ln_scaled(x: f32, k: i32) -> f32 {
    let fr = frexp1(bitcast<u32>(x));
    let high = fr.m > SQRT2;
    let m = select(fr.m, fr.m * 0.5, high);
    let e = fr.k + select(0, 1, high);
    let dk = f32(e + k);
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let r = z * (LG1 + z * (LG2 + z * (LG3 + z * LG4)));
    let hfsq = 0.5 * f * f;
    return dk * LN2_HI - ((hfsq - (s * (hfsq + r) + dk * LN2_LO)) - f);
}

// V(rho) = (rho^2 - 1)/2 - ln(rho) from w = (rho - 1)/(rho + 1), |w| <= 1/3.
fn scale_part_near(w: f32) -> f32 {
    let t = w * w;
    let one_minus_w = 1.0 - w;
    let lead = (2.0 - w) / (one_minus_w * one_minus_w);
    let tail = w * (R0 + t * (R1 + t * (R2 + t * (R3 + t * (R4 + t * (R5 + t * R6))))));
    return 2.0 * t * (lead - tail);
}

fn is_valid_sigma(bits: u32) -> bool {
    // 0 < sigma <= F32_MAX: positive sign, not zero, exponent field not all ones.
    return bits - 1u < 0x7f7fffffu;
}

fn is_finite_bits(bits: u32) -> bool {
    return (bits & 0x7f800000u) != 0x7f800000u;
}

// (cross_entropy, kl, entropy) of one pair; NaN for invalid input.
// Branch-free like src/math.rs: every path computed, the right one selected.
fn divergences(p: vec4<u32>) -> vec3<f32> {
    let valid = is_valid_sigma(p.y) && is_valid_sigma(p.w) && is_finite_bits(p.x) && is_finite_bits(p.z);
    let mu1 = bitcast<f32>(p.x);
    let mu2 = bitcast<f32>(p.z);
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
    let fh = frexp1(bitcast<u32>(select(1.0, abs(diff), has_diff)));
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
    let limit = F32_MAX * pow2(-SAFE_EXP) * pow2(-hi);
    let kl_scaled = y * pow2(hi) * pow2(SAFE_EXP);
    let big = g > SAFE_EXP;
    let kl_inf = big && (g >= MAX_EXP + 3 || y > limit);
    let kl = select(kl_direct, kl_scaled, big);

    let inf = bitcast<f32>(INF_BITS);
    let nan = bitcast<f32>(NAN_BITS);
    let cross_entropy = entropy + kl;
    let ce = select(cross_entropy, inf, kl_inf);
    let kl_out = select(kl, inf, kl_inf);
    return select(vec3<f32>(nan, nan, nan), vec3<f32>(ce, kl_out, entropy), valid);
}

// Write the selected metrics of row i, canonical order.
fn write_row(i: u32, d: vec3<f32>) {
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

@compute @workgroup_size(WORKGROUP_SIZE)
fn main_soa(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = invocation_index(wid, nwg, lid);
    if (i >= arrayLength(&mu1_in)) {
        return;
    }
    let p = vec4<u32>(mu1_in[i], sigma1_in[i], mu2_in[i], sigma2_in[i]);
    write_row(i, divergences(p));
}
