// gaussdiv: information measures of one Gaussian pair (docs/ARCHITECTURE.md
// §2, §2.1–§2.8) — `measures` and the conversion of each parameterisation.
//
// KEEP IN SYNC with src/math/measures.rs (the f32 and f64 instantiations of
// `measures` and of every function it calls: same steps, same order, same
// names). Written against the prelude's aliases F and U and the helpers of
// ln_exp.wgsl, so one text serves the f32 and the f64 kernel.
//
// No reliance on inf/NaN arithmetic (§2.4): overflow is detected by
// comparisons on finite values and +inf / NaN are written as bit patterns.
// sigma (and a variance or precision) is read and decomposed with integer
// operations only, so subnormal values are exact even on devices that flush
// subnormal floats (§2.5). (Subnormal mu or mu1 - mu2 may flush: the host
// path recomputes those rows on the CPU.) Where an exact error term is
// needed, the subtraction that a compiler could simplify algebraically is
// done on the bit patterns (exact_sub), and products are split by bit masks
// (two_prod) (§2.11).

// A pair in the internal representation (see src/math/measures.rs, struct Prep).
struct Prep {
    valid: bool,
    ln1: F,
    ln2: F,
    q1: F,
    e1: i32,
    q2: F,
    e2: i32,
    q1l: F,
    q2l: F,
    p: F,
    pe: i32,
    pr: F,
    pre: i32,
    pl: F,
    prl: F,
    ln_rho: F,
    hl: F,
    hle: F,
    hl_inf: bool,
    near: bool,
    w: F,
    v_near: F,
    rv_near: F,
    ds: F,
    dse: i32,
    sh: F,
    sl: F,
    se: i32,
    gh: F,
    gl: F,
    ge: i32,
}

// V(rho) from u = (rho^2 - 1)/(rho^2 + 1), |u| <= 0.6: u^2 (1/(1 - u) - u R(u^2)).
fn scale_part_u(u: F) -> F {
    let t = u * u;
    return t * (1.0 / (1.0 - u) - u * atanh_r_wide(t));
}

// sigma given.
fn prep_std(b1: U, b2: U, mh: F, kd: i32) -> Prep {
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
    let ln_rho = ln_scaled(m1 / m2, kk);
    let q2 = sq_quot(mh, m2);
    let q1 = sq_quot(mh, m1);
    let pq = sq_quot(m1, m2);
    let prq = sq_quot(m2, m1);
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
        q1.h,
        2 * (kd - k1),
        q2.h,
        2 * (kd - k2),
        q1.l,
        q2.l,
        pq.h,
        2 * kk,
        prq.h,
        -2 * kk,
        pq.l,
        prq.l,
        ln_rho,
        0.5 * ln_rho,
        0.0,
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

// The low part of q after norm_q halved it (or not).
fn norm_l(q: F, ql: F) -> F {
    return select(ql, 0.5 * ql, q >= 2.0 * 2.0);
}

// (nh + nl) / d = q + ql (two-float) for positive nh in [1, 4), d in [1, 2).
fn quot_dw(nh: F, nl: F, d: F) -> Pair2 {
    let q = nh / d;
    let t = two_prod(q, d);
    return Pair2(q, ((exact_sub(nh, t.h) - t.l) + nl) / d);
}

// (n / d)^2 = h + l (two-float) for mantissas n, d in [1, 2).
fn sq_quot(n: F, d: F) -> Pair2 {
    let r = quot_dw(n, 0.0, d);
    let e = two_prod(r.h, r.h);
    return Pair2(e.h, e.l + 2.0 * r.h * r.l);
}

// The low part of `reference` against the two-float h + l of the same quantity.
fn low_of(reference: F, h: F, l: F) -> F {
    return exact_sub(h, reference) + l;
}

// (q, e) with q * 2^e unchanged and q < 4 (so that the flush of pow2 below
// the normal range loses nothing representable in q/2 * 2^e).
fn norm_q(q: F, e: i32) -> Frexp {
    let big = q >= 2.0 * 2.0;
    return Frexp(select(q, 0.5 * q, big), e + select(0, 1, big));
}

struct SumDw {
    h: F,
    l: F,
    k: i32,
}

// n1 * 2^k1 + n2 * 2^k2 = (h + l) * 2^k exactly.
fn sum_dw(n1: F, k1: i32, n2: F, k2: i32) -> SumDw {
    let k = max(k1, k2);
    let a = n1 * pow2(k1 - k);
    let b = n2 * pow2(k2 - k);
    let hl = fast_two_sum(select(b, a, a >= b), select(a, b, a >= b));
    return SumDw(hl.h, hl.l, k);
}

struct Ratio {
    p: F,
    pe: i32,
    pr: F,
    pre: i32,
    ln_rho: F,
    near: bool,
    w: F,
    v_near: F,
    rv_near: F,
    pl: F,
    prl: F,
}

// rho^2 = n / d for squares of scales (variances; or precisions swapped).
fn ratio_sq(nm: F, nk: i32, dm: F, dk: i32) -> Ratio {
    let e = nk - dk;
    let ec = clamp(e, -3, 3);
    let vv = pow2(ec) * nm;
    let four: F = 2.0 * 2.0;
    let near = e == ec && vv <= four * dm && four * vv >= dm;
    let u = (vv - dm) / (vv + dm);
    let w = u / (1.0 + sqrt_f(1.0 - u * u));
    let p = quot_dw(nm, 0.0, dm);
    let pr = quot_dw(dm, 0.0, nm);
    let ln_rho = 0.5 * ln_scaled(p.h, e);
    return Ratio(p.h, e, pr.h, -e, ln_rho, near, w, scale_part_u(u), scale_part_u(-u), p.l, pr.l);
}

// sigma^2 given.
fn prep_var(b1: U, b2: U, mh: F, kd: i32) -> Prep {
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
    let n = two_prod(mh, mh);
    let q1 = quot_dw(n.h, n.l, mv1);
    let q2 = quot_dw(n.h, n.l, mv2);
    let sd = sum_dw(mv1, kv1, mv2, kv2);
    return Prep(
        is_valid_sigma(b1) && is_valid_sigma(b2),
        0.5 * ln_scaled(mv1, kv1),
        0.5 * ln_scaled(mv2, kv2),
        q1.h,
        2 * kd - kv1,
        q2.h,
        2 * kd - kv2,
        q1.l,
        q2.l,
        rs.p,
        rs.pe,
        rs.pr,
        rs.pre,
        rs.pl,
        rs.prl,
        rs.ln_rho,
        0.5 * rs.ln_rho,
        0.0,
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
fn prep_precision(b1: U, b2: U, mh: F, kd: i32) -> Prep {
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
    let nn = two_prod(mh, mh);
    let tq1 = two_prod(nn.h, mp1);
    let tq2 = two_prod(nn.h, mp2);
    let n1 = norm_q(tq1.h, 2 * kd + kp1);
    let n2 = norm_q(tq2.h, 2 * kd + kp2);
    let q1l = norm_l(tq1.h, tq1.l + nn.l * mp1);
    let q2l = norm_l(tq2.h, tq2.l + nn.l * mp2);
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
        q1l,
        q2l,
        rs.p,
        rs.pe,
        rs.pr,
        rs.pre,
        rs.pl,
        rs.prl,
        rs.ln_rho,
        0.5 * rs.ln_rho,
        0.0,
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
fn prep_log(b1: U, b2: U, mh: F, kd: i32, logvar: bool) -> Prep {
    let a1 = bitcast<F>(b1);
    let a2 = bitcast<F>(b2);
    let s1 = select(a1, 0.5 * a1, logvar);
    let s2 = select(a2, 0.5 * a2, logvar);
    // 1/2 ln rho and its exact rounding error.
    let hx1 = 0.5 * s1;
    let hx2 = -0.5 * s2;
    let hswap = abs(hx1) < abs(hx2);
    let hle2 = fast_two_sum(select(hx1, hx2, hswap), select(hx2, hx1, hswap));
    let hl = hle2.h;
    let hle = hle2.l;
    let half_max = 0.5 * F_MAX;
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
    // Low parts (for the overflow decision; mirrors math/measures.rs).
    let y1 = exp_tri(-2.0 * s1c);
    let y2 = exp_tri(-2.0 * s2c);
    let nn = two_prod(mh, mh);
    let t1 = two_prod(nn.h, y1.h);
    let t2 = two_prod(nn.h, y2.h);
    let q1l = norm_l(mh2 * iv1.m, low_of(mh2 * iv1.m, t1.h, t1.l + ((nn.h * y1.l + nn.l * y1.h) + nn.l * y1.l)));
    let q2l = norm_l(mh2 * iv2.m, low_of(mh2 * iv2.m, t2.h, t2.l + ((nn.h * y2.l + nn.l * y2.h) + nn.l * y2.l)));
    let u1 = two_prod(x1.h, y2.h);
    let u2 = two_prod(x2.h, y1.h);
    let hle_x = select(0.0, hle, abs(hl) <= lim);
    let eb = exp_tri(2.0 * 2.0 * hx);
    let ebr = exp_tri(-2.0 * 2.0 * hx);
    let pl_small = low_of(sq1.m * iv2.m, u1.h, u1.l + ((x1.h * y2.l + x1.l * y2.h) + x1.l * y2.l));
    let prl_small = low_of(sq2.m * iv1.m, u2.h, u2.l + ((x2.h * y1.l + x2.l * y1.h) + x2.l * y1.l));
    let pl_big = low_of(pb.m, eb.h, eb.l + eb.h * (2.0 * 2.0 * hle_x));
    let prl_big = low_of(pbr.m, ebr.h, ebr.l - ebr.h * (2.0 * 2.0 * hle_x));
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
        q1l,
        q2l,
        select(pb.m, sq1.m * iv2.m, small),
        select(pb.k, sq1.k + iv2.k, small),
        select(pbr.m, sq2.m * iv1.m, small),
        select(pbr.k, sq2.k + iv1.k, small),
        select(pl_big, pl_small, small),
        select(prl_big, prl_small, small),
        ln_rho,
        hl,
        hle,
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

// KL(p||q) = M + V from its pieces with the low parts ql, pl, vl (value, and
// whether it exceeds F_MAX). logv: log-parameters, where the rest of V may
// itself be huge. Large sums in two-float arithmetic, rounded once.
fn kl_core(logv: bool, q: F, ql: F, e_m: i32, p: F, pl: F, pe: i32, v_far: F, vl: F, v_inf: bool, near: bool, v_near: F) -> Scaled {
    let b = select(p, 0.0, near);
    let bl = select(pl, 0.0, near);
    let e_b = select(pe, NO_EXP, near);
    let v_rest = select(v_far, v_near, near);
    let v_low = select(vl, 0.0, near);

    let g = max(e_m, e_b);
    // Ordinary magnitudes: sum directly.
    let m_term = scale2(0.5 * q, e_m);
    let b_term = scale2(0.5 * b, e_b);
    let kl_direct = m_term + (b_term + v_rest);
    // Large terms: summed at scale 2^-g in two-float arithmetic, rounded
    // once, compared with MAX at that scale.
    let cm = pow2(e_m - g);
    let cb = pow2(e_b - g);
    let ya = 0.5 * q * cm;
    let yb = 0.5 * b * cb;
    let s0 = fast_two_sum(select(yb, ya, ya >= yb), select(ya, yb, ya >= yb));
    let low0 = s0.l + (0.5 * ql * cm + 0.5 * bl * cb);
    let yv = scale2(v_rest, -g);
    let vswap = abs(s0.h) < abs(yv);
    let s1 = fast_two_sum(select(s0.h, yv, vswap), select(yv, s0.h, vswap));
    var y = s0.h + low0;
    if (logv) {
        y = s1.h + ((s1.l + scale2(v_low, -g)) + low0);
    }
    let hi = g - SAFE_EXP;
    let limit = F_MAX * pow2(-SAFE_EXP) * pow2(-hi);
    let kl_scaled = y * pow2(hi) * pow2(SAFE_EXP);
    let big = g > SAFE_EXP;
    let kl_inf = v_inf || (big && (g >= MAX_EXP + 3 || y > limit));
    return Scaled(select(kl_direct, kl_scaled, big), kl_inf);
}

// atanh(t)/t - 1 for 0 <= t <= 1/9.
fn atanh_tail(t: F) -> F {
    let t2 = t * t;
    return t2 * atanh_r(t2);
}

// Delta mu = mu1 - mu2 (from halves when it could overflow) and its
// magnitude mh * 2^kd (see src/math/measures.rs, fn delta_mu).
struct DeltaMu {
    halve: bool,
    diff: F,
    has_diff: bool,
    mh: F,
    kh: i32,
    kd: i32,
}

fn delta_mu(mu1: F, mu2: F) -> DeltaMu {
    let halve = abs(mu1) > HALVE_THRESHOLD || abs(mu2) > HALVE_THRESHOLD;
    let diff = select(mu1 - mu2, 0.5 * mu1 - 0.5 * mu2, halve);
    let has_diff = diff != 0.0;
    let fh = frexp1(bitcast<U>(select(1.0, abs(diff), has_diff)));
    return DeltaMu(halve, diff, has_diff, fh.m, fh.k, fh.k + select(0, 1, halve));
}

// Every measure of one pair, canonical order; NaN for invalid input.
// Branch-free like src/math/measures.rs: every path computed, the right one selected
// (the branch on PARAM is on a pipeline constant).
fn measures(pv: vec4<U>) -> array<F, 10> {
    let mu1 = bitcast<F>(pv.x);
    let mu2 = bitcast<F>(pv.z);
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
    // -1/2 - ln rho and ln rho - 1/2 with the low parts of their rounding.
    let v_far = -0.5 - pp.ln_rho;
    let rv_far = -0.5 + pp.ln_rho;
    let lr_big = abs(pp.ln_rho) >= 0.5;
    let ve = fast_two_sum(select(-0.5, -pp.ln_rho, lr_big), select(-pp.ln_rho, -0.5, lr_big));
    let rve = fast_two_sum(select(-0.5, pp.ln_rho, lr_big), select(pp.ln_rho, -0.5, lr_big));
    let vl = ve.l - 2.0 * pp.hle;
    let rvl = rve.l + 2.0 * pp.hle;
    let q1l = select(0.0, pp.q1l, has_diff);
    let q2l = select(0.0, pp.q2l, has_diff);
    let logv = PARAM == PARAM_LOGSTD || PARAM == PARAM_LOGVAR;
    let klr = kl_core(logv, q2, q2l, e2, pp.p, pp.pl, pp.pe, v_far, vl, pp.hl_inf, pp.near, pp.v_near);
    let kl = klr.v;
    let kl_inf = klr.inf;
    // Log-parameters: H(p1, p2) via ln sigma2 where KL overflows through ln rho -> -inf.
    let m2s = scale_exp(0.5 * q2, e2);
    let ce_base = HALF_LN_2PI_E - 0.5 + pp.ln2;
    let ce_alt = ce_base + m2s.v;
    let ce_alt_inf = m2s.inf || 0.5 * ce_base + 0.5 * m2s.v > 0.5 * F_MAX;
    let use_alt = logv && ((pp.hl_inf && pp.ln_rho < 0.0) || pp.ln_rho < -64.0);
    let ce_sum_inf = logv && 0.5 * entropy + 0.5 * kl > 0.5 * F_MAX;
    let cross_entropy = select(entropy + kl, ce_alt, use_alt);
    let ce_inf = select(kl_inf || ce_sum_inf, ce_alt_inf, use_alt);
    let rklr = kl_core(logv, q1, q1l, e1, pp.pr, pp.prl, pp.pre, rv_far, rvl, pp.hl_inf, pp.near, pp.rv_near);
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
    let ja = q1 * pow2(e1 - ej);
    let jb = q2 * pow2(e2 - ej);
    let js = fast_two_sum(select(jb, ja, ja >= jb), select(ja, jb, ja >= jb));
    let jl = js.l + (q1l * pow2(e1 - ej) + q2l * pow2(e2 - ej));
    let nj = norm_q(js.h, ej);
    let jr = kl_core(
        logv,
        nj.m,
        norm_l(js.h, jl),
        select(NO_EXP, nj.k, has_diff),
        select(pp.pr, pp.p, side1),
        select(pp.prl, pp.pl, side1),
        select(pp.pre, pp.pe, side1),
        0.5 * rs2 - 1.0,
        0.0,
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
    // |1/2 ln rho| = |hl + hle| (hle is 0 unless log-parameters).
    let hle_abs = select(pp.hle, -pp.hle, pp.hl < 0.0);
    let lp_far = ((abs(pp.hl) - 0.5 * LN2_HI) + (hle_abs - 0.5 * LN2_LO)) + 0.5 * log1p;
    let lp = select(lp_far, lp_near, pp.near);

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
    // D_B: for large X from X's two-float value at scale 2^-xe, rounded once.
    let db_big = has_diff && xe > SAFE_EXP;
    let xd = 0.5 * 0.5 * xqc.h + (0.5 * 0.5 * xqc.l + scale2(lp, -xe));
    let dhi = xe - SAFE_EXP;
    let db_limit = F_MAX * pow2(-SAFE_EXP) * pow2(-dhi);
    let db_scaled = xd * pow2(dhi) * pow2(SAFE_EXP);
    let db_inf = select(x_inf, xe >= MAX_EXP + 8 || xd > db_limit, db_big);
    let bhattacharyya = select(x + lp, db_scaled, db_big);
    let x_big = x_inf || xh > EXP_ARG_MAX;
    let exs = exp_split(-select(xh, EXP_ARG_MAX, x_big));
    let ex = exs.m * (1.0 - select(xl, 0.0, x_big));

    let f_near = sqrt_f((1.0 - t) / (1.0 + t));
    let rhos = sqrt_exp(ps, pes);
    let ffar0 = sqrt_exp(2.0 * rhos.m / one_rs2, rhos.k);
    // Log-parameters with rho_s^2 saturated: e^(-|hl|) * sqrt(2), hl with its
    // exact rounding error (mirrors math/measures.rs).
    let sat = logv && 2.0 * 2.0 * abs(pp.hl) > EXP_ARG_MAX;
    let eys = exp_split(-select(0.0, abs(pp.hl), sat));
    let f_sat = eys.m * (1.0 - hle_abs) * SQRT2;
    let ffar_m = select(ffar0.m, f_sat, sat);
    let ffar_k = select(ffar0.k, eys.k, sat);
    let fm = select(ffar_m, f_near, pp.near);
    let fe = select(ffar_k, 0, pp.near);
    let coefficient = scale_exp(ex * fm, exs.k + fe).v;

    // Hellinger sqrt(1 - e^-D): sqrt(D) * sqrt(phi(D)) for D < 1/2, else directly.
    let sx = sqrt_exp(xm, es);
    let ha = scale2(sx.m, sx.k);
    let hb = select(sqrt_f(lp_far), abs(pp.w) * sqrt_f(1.0 + at_tail), pp.near);
    let hmax = select(hb, ha, ha > hb);
    let hmin = select(ha, hb, ha > hb);
    let ratio = hmin / select(1.0, hmax, hmax > 0.0);
    let sqrt_d = hmax * sqrt_f(1.0 + ratio * ratio);
    let small = !x_inf && bhattacharyya < 0.5;
    let phi = taylor(-bhattacharyya);
    let h_small = sqrt_d * sqrt_f(phi);
    let eds = exp_split(-select(select(bhattacharyya, EXP_ARG_MAX, x_inf), 0.0, small));
    let h_large = sqrt_f(1.0 - eds.m * pow2(eds.k));
    let hellinger = select(h_large, h_small, small);

    // Wasserstein-2: hypot(Delta mu, sigma1 - sigma2) at a common power-of-two scale.
    let has_ds = pp.ds > 0.0;
    let fds = frexp1(bitcast<U>(select(1.0, pp.ds, has_ds)));
    let kmu = select(NO_EXP, kd, has_diff);
    let ksd = select(NO_EXP, pp.dse + fds.k, has_ds);
    let km = max(kmu, ksd);
    let wa = select(0.0, mh, has_diff) * pow2(kmu - km);
    let wb = select(0.0, fds.m, has_ds) * pow2(ksd - km);
    let w2s = scale_exp(sqrt_f(wa * wa + wb * wb), km);
    // |Delta mu| just above F_MAX by more than 2^-54 of it: still +inf.
    let amu1 = abs(mu1);
    let amu2 = abs(mu2);
    let big_mu = select(amu2, amu1, amu1 > amu2);
    let small_mu = select(amu1, amu2, amu1 > amu2);
    let same_sign = (mu1 > 0.0 && mu2 > 0.0) || (mu1 < 0.0 && mu2 < 0.0);
    let opposite = !same_sign;
    let excess = (0.5 * big_mu - 0.5 * F_MAX) + 0.5 * small_mu;
    let w2_inf = w2s.inf || (opposite && big_mu >= 0.5 * F_MAX && excess > scale2(F_MAX, -55));

    let inf = run_time_inf(mu1);
    let nan = run_time_nan(mu1);
    var out = array<F, 10>(
        select(cross_entropy, inf, ce_inf),
        select(kl, inf, kl_inf),
        entropy,
        entropy_q,
        select(rkl, inf, rkl_inf),
        select(jeffreys, inf, jeffreys_inf),
        select(bhattacharyya, inf, db_inf),
        coefficient,
        hellinger,
        select(w2s.v, inf, w2_inf),
    );
    if (!valid) {
        out = array<F, 10>(nan, nan, nan, nan, nan, nan, nan, nan, nan, nan);
    }
    return out;
}
