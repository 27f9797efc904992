// gaussdiv: the gradients kernel — the gradients of the cross-entropy and
// of KL with respect to the inputs (mu1, a1, mu2, a2), in the
// parameterisation PARAM (docs/ARCHITECTURE.md §2.9).
//
// Assembled (src/gpu/kernel.rs) after a precision prelude, io.wgsl,
// ln_exp.wgsl and measures.wgsl (it uses delta_mu and the helpers frexp1,
// pow2, diff_scaled, sum_scaled, fast_two_sum, two_prod, quot_dw, low_of,
// exp_tri, clampf, exp_sat, expm1,
// scale2, is_valid_sigma, is_finite_bits, invocation_index); the same text
// serves the f32 and the f64 module.
//
// KEEP IN SYNC with src/math/gradients.rs (fn gradients, GradPrep,
// grad_std, grad_var, grad_precision, grad_log, finish: same steps, same
// order, same names) and with src/gradient.rs (output: 4 values per
// selected measure and pair, [d/dmu1, d/da1, d/dmu2, d/da2], cross-entropy
// (WRITE_CE) before KL (WRITE_KL); other WRITE_* overrides are ignored
// here).
//
// Entry point main_grad: pairs at binding 0, gradients at binding 1.

// See src/math/gradients.rs, struct GradPrep: every quantity a mantissa and an exponent.
struct GradPrep {
    valid: bool,
    im: F, // 1/sigma2^2 = (im + il) * 2^ie
    il: F,
    ie: i32,
    rho2m: F, // rho^2
    rho2e: i32,
    am: F, // A = rho^2 - 1
    ae: i32,
    cm: F, // dH/da1 = rho^2 * f1
    ce: i32,
    km: F, // dKL/da1 = A * f1
    ke: i32,
    f2m: F, // chain factor of a2
    f2e: i32,
}

// sigma given: f = 1/sigma; A = (s1 - s2)(s1 + s2)/s2^2 with the exact difference.
fn grad_std(b1: U, b2: U) -> GradPrep {
    let f1 = frexp1(b1);
    let f2 = frexp1(b2);
    let m1 = f1.m;
    let k1 = f1.k;
    let m2 = f2.m;
    let k2 = f2.k;
    let d = diff_scaled(m1, k1, m2, k2);
    let dm = d.m;
    let dk = d.k;
    let sm = sum_scaled(m1, k1, m2, k2).m;
    // 1/m2^2 = 1/(d + dl) with m2^2 = d + dl exactly.
    let d2 = two_prod(m2, m2);
    let iq = quot_dw(1.0, 0.0, d2.h);
    let i2 = iq.h;
    return GradPrep(
        is_valid_sigma(b1) && is_valid_sigma(b2),
        i2,
        iq.l - i2 * i2 * d2.l,
        -2 * k2,
        m1 * m1 * i2,
        2 * k1 - 2 * k2,
        dm * sm * i2,
        2 * dk - 2 * k2,
        m1 * i2,
        k1 - 2 * k2,
        dm * (sm / m1) * i2,
        2 * dk - k1 - 2 * k2,
        1.0 / m2,
        -k2,
    );
}

// sigma^2 given: f = 1/(2 sigma^2); A = (v1 - v2)/v2 with the exact difference.
fn grad_var(b1: U, b2: U) -> GradPrep {
    let f1 = frexp1(b1);
    let f2 = frexp1(b2);
    let v1 = f1.m;
    let k1 = f1.k;
    let v2 = f2.m;
    let k2 = f2.k;
    let d = diff_scaled(v1, k1, v2, k2);
    let dm = d.m;
    let dk = d.k;
    let iq = quot_dw(1.0, 0.0, v2);
    let i2 = iq.h;
    return GradPrep(
        is_valid_sigma(b1) && is_valid_sigma(b2),
        i2,
        iq.l,
        -k2,
        v1 * i2,
        k1 - k2,
        dm * i2,
        dk - k2,
        0.5 * i2,
        -k2,
        0.5 * dm * i2 / v1,
        dk - k2 - k1,
        0.5 * i2,
        -k2,
    );
}

// 1/sigma^2 = tau given: rho^2 = tau2/tau1, f = -1/(2 tau); A = (tau2 - tau1)/tau1.
fn grad_precision(b1: U, b2: U) -> GradPrep {
    let f1 = frexp1(b1);
    let f2 = frexp1(b2);
    let p1 = f1.m;
    let k1 = f1.k;
    let p2 = f2.m;
    let k2 = f2.k;
    let d = diff_scaled(p2, k2, p1, k1);
    let dm = d.m;
    let dk = d.k;
    let i1 = 1.0 / p1;
    return GradPrep(
        is_valid_sigma(b1) && is_valid_sigma(b2),
        p2,
        0.0,
        k2,
        p2 * i1,
        k2 - k1,
        dm * i1,
        dk - k1,
        -0.5 * p2 * i1 * i1,
        k2 - 2 * k1,
        -0.5 * dm * i1 * i1,
        dk - 2 * k1,
        -0.5 / p2,
        -k2,
    );
}

// ln sigma (logvar false, f = 1) or ln sigma^2 (true, f = 1/2) given.
fn grad_log(b1: U, b2: U, logvar: bool) -> GradPrep {
    let a1 = bitcast<F>(b1);
    let a2 = bitcast<F>(b2);
    // a1/2 - a2/2 = hh + hl exactly; x = c * (hh + hl).
    let h1 = 0.5 * a1;
    let h2 = -0.5 * a2;
    let swap = abs(h1) < abs(h2);
    let hs = fast_two_sum(select(h1, h2, swap), select(h2, h1, swap));
    let hh = hs.h;
    let hl = hs.l;
    let c = select(F(4.0), F(2.0), logvar);
    let lim = EXP_ARG_MAX;
    let in_range = abs(hh) <= lim;
    let xh = c * clampf(hh, -lim, lim);
    let xl = select(0.0, c * hl, in_range);
    let pf = exp_sat(xh);
    let pm = pf.m;
    let pe = pf.k;
    let rm = pm * (1.0 + xl);
    // A = rho^2 - 1: for |x| <= 64 expm1 (plus the low part); beyond, rho^2 or -1 alone.
    let lim_a: F = 64.0;
    let em = expm1(clampf(xh, -lim_a, lim_a));
    let am_mid = em + (1.0 + em) * xl;
    let high = xh > lim_a;
    let low = xh < -lim_a;
    let am = select(select(am_mid, -1.0, low), rm, high);
    let ae = select(0, pe, high);
    // 1/sigma2^2 = e^(-2 ln sigma2).
    let s2 = select(a2, 0.5 * a2, logvar);
    let s2c = clampf(s2, -lim, lim);
    let iv = exp_sat(-2.0 * s2c);
    let ivt = exp_tri(-2.0 * s2c);
    let f = select(F(1.0), F(0.5), logvar);
    return GradPrep(
        is_finite_bits(b1) && is_finite_bits(b2),
        iv.m,
        low_of(iv.m, ivt.h, ivt.l),
        iv.k,
        rm,
        pe,
        am,
        ae,
        f * rm,
        pe,
        f * am,
        ae,
        f,
        0,
    );
}

// m * 2^e as a value: +-inf beyond F_MAX (by comparing exponents), gradual
// underflow below the normal range, 0 for m = 0.
fn finish(m: F, e: i32) -> F {
    let nz = m != 0.0;
    let fr = frexp1(bitcast<U>(select(1.0, abs(m), nz)));
    let t = fr.k + e;
    let big = t >= MAX_EXP;
    let neg = m < 0.0;
    let v = scale2(fr.m, t);
    let inf = bitcast<F>(select(INF_BITS, NEG_INF_BITS, neg));
    return select(0.0, select(select(v, -v, neg), inf, big), nz);
}

// [dH/dmu1, dH/da1, dH/dmu2, dH/da2, dKL/dmu1, dKL/da1, dKL/dmu2, dKL/da2].
fn gradients(pv: vec4<U>) -> array<F, 8> {
    let mu1 = bitcast<F>(pv.x);
    let mu2 = bitcast<F>(pv.z);
    // Delta mu = +-mh * 2^kd (delta_mu, as in measures).
    let dm = delta_mu(mu1, mu2);
    let diff = dm.diff;
    let has_diff = dm.has_diff;
    let mh = dm.mh;
    let kd = dm.kd;
    // Its rounding error: Delta mu = (mh + dl) * 2^kd.
    let xa = select(mu1, 0.5 * mu1, dm.halve);
    let ya = select(-mu2, -0.5 * mu2, dm.halve);
    let swap = abs(xa) < abs(ya);
    let dd = fast_two_sum(select(xa, ya, swap), select(ya, xa, swap));
    let dl = scale2(select(dd.l, -dd.l, diff < 0.0), -dm.kh);
    let md = select(0.0, select(mh, -mh, diff < 0.0), has_diff);

    var g: GradPrep;
    if (PARAM == PARAM_VAR) {
        g = grad_var(pv.y, pv.w);
    } else if (PARAM == PARAM_LOGSTD) {
        g = grad_log(pv.y, pv.w, false);
    } else if (PARAM == PARAM_LOGVAR) {
        g = grad_log(pv.y, pv.w, true);
    } else if (PARAM == PARAM_PRECISION) {
        g = grad_precision(pv.y, pv.w);
    } else {
        g = grad_std(pv.y, pv.w);
    }
    let valid = g.valid && is_finite_bits(pv.x) && is_finite_bits(pv.z);

    // d/dmu1 = Delta mu / sigma2^2.
    let gm = md * g.im;
    let ge = kd + g.ie;
    // A normalised to a mantissa in [1, 2) (see src/math/gradients.rs).
    let a_nz = g.am != 0.0;
    let fa = frexp1(bitcast<U>(select(1.0, abs(g.am), a_nz)));
    let an = select(0.0, select(fa.m, -fa.m, g.am < 0.0), a_nz);
    let ane = select(NO_EXP, g.ae + fa.k, a_nz);
    // q^2 = Delta mu^2 / sigma2^2, and 1 - rho^2 - q^2 = -(A + q^2) at a common scale.
    let qm = select(0.0, mh * mh * g.im, has_diff);
    let qe = 2 * kd + g.ie;
    let be = select(ane, max(qe, ane), has_diff);
    let bm = -(an * pow2(ane - be) + qm * pow2(qe - be));

    let d_mu1 = finish(gm, ge);
    let d_mu2 = finish(-gm, ge);
    // Where -(A + q^2) cancels (rho < 1, q^2 in [1/2, 2]): B = 1 - q^2 from
    // the two-float q^2 (exact by Sterbenz), then B - rho^2.
    let nn = two_prod(mh, mh);
    let nl = nn.l + 2.0 * mh * dl;
    let qt = two_prod(nn.h, g.im);
    let qlow = qt.l + (nn.h * g.il + nl * g.im);
    let qs = scale2(qt.h, qe);
    let qsl = scale2(qlow, qe);
    let mid = has_diff && g.am < 0.0 && qs >= 0.5 && qs <= 2.0;
    let bq_dw = (1.0 - select(1.0, qs, mid)) - select(0.0, qsl, mid);
    // sigma given: B = (s2 - |dmu|)(s2 + |dmu|)/s2^2, the difference exact.
    let fs2 = frexp1(pv.w);
    let sc = pow2(clamp(kd - fs2.k, -2, 2));
    let mhs = mh * sc;
    let dls = dl * sc;
    let b_std = ((fs2.m - mhs) - dls) * ((fs2.m + mhs) + dls) * g.im;
    var bq = bq_dw;
    if (PARAM == PARAM_STD) {
        bq = select(0.0, b_std, mid);
    }
    let rv = scale2(g.rho2m, g.rho2e);
    let b_zero = bq == 0.0;
    let bm_mid = select(bq - rv, -g.rho2m, b_zero);
    let be_mid = select(0, g.rho2e, b_zero);
    let d_a2 = finish(select(bm, bm_mid, mid) * g.f2m, select(be, be_mid, mid) + g.f2e);
    let kl_a1 = finish(g.km, g.ke);
    let ce_a1 = finish(g.cm, g.ce);
    var out = array<F, 8>(d_mu1, ce_a1, d_mu2, d_a2, d_mu1, kl_a1, d_mu2, d_a2);
    if (!valid) {
        let nan = run_time_nan(d_mu1);
        out = array<F, 8>(nan, nan, nan, nan, nan, nan, nan, nan);
    }
    return out;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main_grad(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = invocation_index(wid, nwg, lid);
    if (i >= arrayLength(&pairs)) {
        return;
    }
    let g = gradients(pairs[i]);
    let k = select(0u, 4u, WRITE_CE) + select(0u, 4u, WRITE_KL);
    var o = i * k;
    if (WRITE_CE) {
        for (var j = 0u; j < 4u; j = j + 1u) {
            results[o + j] = g[j];
        }
        o = o + 4u;
    }
    if (WRITE_KL) {
        for (var j = 0u; j < 4u; j = j + 1u) {
            results[o + j] = g[4u + j];
        }
    }
}
