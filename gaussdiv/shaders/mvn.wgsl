// The full-covariance kernel (entry point `main_mvn`): the GPU mirror of
// src/mvn/formulas.rs for pairs far apart (docs/ARCHITECTURE.md §9), one
// invocation per pair, on the linear algebra of mvn_linalg.wgsl.
//
// Input (binding 0, read as bits): pair after pair, pair_stride() values
// each (2·D + 2·D² = 2·D·(D + 1), a multiple of 4): μ1 (D), the side-1 matrix
// (D², row-major), μ2 (D), the side-2 matrix (D²); the binding holds whole
// pairs only (its length gives the count). Binding 3 (uniform): the
// dimension (checked against the pipeline constant D), the forms of the two
// sides (0 covariance, 1 scale_tril, 2 precision) and the trip count of the
// `loops_completed` probe (2). Output (binding 1): the selected measures,
// canonical order. Scratch (binding 2): mvn_linalg.wgsl.
//
// The kernel evaluates what formulas.rs evaluates when ‖N‖_F ≥ ½ (N =
// M·Mᵀ − I, M = L2⁻¹L1), in the same order of operations. A pair it does not
// finish — invalid input (formulas::check, mirrored by `side_valid`), close
// together (the CPU's near forms, with their double-word residuals), a
// failed factorisation, or, when REFINE_BC, a Bhattacharyya distance above
// BC_REFINE_LIMIT (the CPU recomputes that coefficient in f64), an f32 W₂
// of D > 32 (W2_ON_HOST: the CPU evaluates it in f64), or a pair
// whose loops llvmpipe cut short (`loops_completed`) — is written as a row
// of NaN. On the host path (src/gpu/mvn.rs) the host evaluates those rows on
// the CPU (and runs the input checks itself, to name an invalid pair); on
// the device path (src/gpu/mvn_device.rs) they stay NaN for the app.

@group(0) @binding(3) var<uniform> mvn_header: vec4<u32>;

const KIND_COV: u32 = 0u;
const KIND_TRIL: u32 = 1u;
const KIND_PREC: u32 = 2u;

var<private> KIND1: u32;
var<private> KIND2: u32;
// An f32 pipeline asked for the coefficient: rows with D_B > BC_REFINE_LIMIT go to the CPU.
override REFINE_BC: bool = false;
// The D_B above which it does so (mvn::bc_refine_db for this D).
override BC_REFINE_LIMIT: f32 = 4.0;
// An f32 pipeline of D > 32 asked for W₂: every row goes to the CPU, which
// evaluates W₂ in f64 (mvn::f32_w2_in_f64).
override W2_ON_HOST: bool = false;
// formulas::SYM_TOL_ULPS (the symmetry tolerance per dimension, in units of u).
override SYM_TOL_ULPS: f32 = 64.0;

// Scratch slots (in elements of this invocation): ten D x D matrices, then five vectors.
fn slot(s: u32) -> u32 {
    return s * D * D;
}
fn vslot(s: u32) -> u32 {
    return 10u * D * D + s * D;
}
fn scratch_per_pair() -> u32 {
    return 10u * D * D + 5u * D;
}

var<private> PAIR_BASE: u32;

fn pair_stride() -> u32 {
    return 2u * D * (D + 1u);
}

// Input value k of this invocation's pair, as bits and as a value.
fn inp_bits(k: u32) -> U {
    let e = PAIR_BASE + k;
    return pairs[e / 4u][e % 4u];
}
fn inp(k: u32) -> F {
    return bitcast<F>(inp_bits(k));
}

// formulas::check: side s's mean finite; its matrix finite and symmetric
// within SYM_TOL_ULPS·D·u of √(a_ii·a_jj) (cov, prec; the lower triangle is
// used), or lower triangular with a positive diagonal (tril).
fn side_valid(s: u32, kind: u32) -> bool {
    for (var i = 0u; i < D; i++) {
        if (!is_finite_bits(inp_bits(mu_at(s) + i))) {
            return false;
        }
    }
    let m0 = mat_at(s);
    for (var i = 0u; i < D; i++) {
        for (var j = 0u; j < D; j++) {
            if (kind == KIND_TRIL && j > i) {
                if (inp(m0 + i * D + j) != F(0.0)) {
                    return false;
                }
            } else if (!is_finite_bits(inp_bits(m0 + i * D + j))) {
                return false;
            }
        }
    }
    if (kind == KIND_TRIL) {
        for (var i = 0u; i < D; i++) {
            if (!(inp(m0 + i * D + i) > F(0.0))) {
                return false;
            }
        }
        return true;
    }
    let tol = F(SYM_TOL_ULPS * f32(D)) * EPS;
    for (var i = 0u; i < D; i++) {
        for (var j = 0u; j < i; j++) {
            let x = inp(m0 + i * D + j);
            let y = inp(m0 + j * D + i);
            let scale = sqrt_f(abs(inp(m0 + i * D + i)) * abs(inp(m0 + j * D + j)));
            let diff = abs(x - y);
            if (diff > tol * scale || (scale == F(0.0) && diff > F(0.0))) {
                return false;
            }
        }
    }
    return true;
}

// Offsets of side s's mean and matrix in the pair.
fn mu_at(s: u32) -> u32 {
    return select(D + D * D, 0u, s == 1u);
}
fn mat_at(s: u32) -> u32 {
    return mu_at(s) + D;
}

// formulas::scale_exp: log2 of a typical variance of side s.
fn scale_exp_of(s: u32, kind: u32) -> i32 {
    var big = F(0.0);
    for (var i = 0u; i < D; i++) {
        big = maxf(big, abs(inp(mat_at(s) + i * D + i)));
    }
    let e = select(0, frexp1(bitcast<U>(big)).k, big > 0.0);
    if (kind == KIND_COV) {
        return e;
    } else if (kind == KIND_TRIL) {
        return 2 * e;
    }
    return -e;
}

// formulas::load: the lower triangle mirrored (or the triangle copied), times 2^e.
fn load(s: u32, kind: u32, a: u32, e: i32) {
    let m0 = mat_at(s);
    for (var i = 0u; i < D; i++) {
        for (var j = 0u; j < D; j++) {
            var v: F;
            if (kind == KIND_TRIL && j > i) {
                v = F(0.0);
            } else if (kind == KIND_TRIL) {
                v = inp(m0 + i * D + j);
            } else if (j > i) {
                v = inp(m0 + j * D + i);
            } else {
                v = inp(m0 + i * D + j);
            }
            put(a + i * D + j, scale2(v, e));
        }
    }
}

// formulas::ln_diag: ln of the product of the diagonal times 2^k0 (one logarithm).
fn ln_diag(a: u32, k0: i32) -> F {
    var m = F(1.0);
    var k = k0;
    for (var i = 0u; i < D; i++) {
        let x = frexp1(bitcast<U>(at(a + i * D + i)));
        let p = frexp1(bitcast<U>(m * x.m));
        m = p.m;
        k += x.k + p.k;
    }
    return ln_scaled(m, k);
}

// formulas::v_pair: V(a/b) by the univariate kernel.
fn v_pair(a: F, b: F) -> F {
    let z = bitcast<U>(F(0.0));
    return measures(vec4<U>(z, bitcast<U>(a), z, bitcast<U>(b)))[1];
}

// formulas::kl_far: Σ V(La_jj, Lb_jj) + ½Σ_{i>j} m_ij².
fn kl_far(la: u32, lb: u32, m: u32) -> F {
    var diag = F(0.0);
    var off = F(0.0);
    for (var i = 0u; i < D; i++) {
        diag = diag + v_pair(at(la + i * D + i), at(lb + i * D + i));
        for (var j = 0u; j < i; j++) {
            let v = at(m + i * D + j);
            off = off + v * v;
        }
    }
    return diag + 0.5 * off;
}

// formulas::bures_far: ‖L1 − L2·U‖²_F, U the polar factor of L2ᵀL1.
fn bures_far(l1: u32, l2: u32, a: u32, v: u32, u: u32) -> F {
    mul(l2, true, l1, false, a);
    one_sided_jacobi(a, v, true);
    for (var k = 0u; k < D; k++) {
        let nk = sqrt_f(column_norm2(a, k));
        for (var i = 0u; i < D; i++) {
            put(a + i * D + k, at(a + i * D + k) / nk);
        }
    }
    mul(a, false, v, true, u);
    var b2 = F(0.0);
    for (var i = 0u; i < D; i++) {
        for (var j = 0u; j < D; j++) {
            var s = F(0.0);
            for (var k = 0u; k < D; k++) {
                s = s + at(l2 + i * D + k) * at(u + k * D + j);
            }
            let r = at(l1 + i * D + j) - s;
            b2 = b2 + r * r;
        }
    }
    return b2;
}

// formulas::whiten: ‖x‖² of x = L⁻¹v (Uᵀv for a precision side); x receives it.
fn whiten(kind: u32, l: u32, u: u32, v: u32, x: u32) -> F {
    if (kind == KIND_PREC) {
        for (var i = 0u; i < D; i++) {
            var s = F(0.0);
            for (var k = 0u; k < D; k++) {
                s = s + at(u + k * D + i) * at(v + k);
            }
            put(x + i, s);
        }
    } else {
        copy_to(v, x, D);
        solve_lower(l, x, 1u);
    }
    return norm2(x, D);
}

// formulas::factor: the lower factor l of a side (and u for a precision).
fn factor(kind: u32, a: u32, l: u32, u: u32, t: u32) -> bool {
    if (kind == KIND_COV) {
        return cholesky(a, l);
    } else if (kind == KIND_TRIL) {
        copy_to(a, l, D * D);
        return true;
    }
    if (!cholesky_rev(a, u)) {
        return false;
    }
    inverse_upper_t(u, l, t);
    return true;
}

// formulas::coefficient_hellinger: e^(−D) and √(1 − e^(−D)) for D ≥ 0.
fn coefficient_hellinger(db: F) -> vec2<F> {
    let ys = exp_split(-db);
    let bc = scale2(ys.m, ys.k);
    let small = db < 0.5;
    let phi = taylor(-db);
    let hel = select(sqrt_f(1.0 - bc), sqrt_f(db) * sqrt_f(phi), small);
    let inf = db > F_MAX;
    return vec2<F>(select(bc, F(0.0), inf), select(hel, F(1.0), inf));
}

// The measures of this pair (canonical order), or false when the host must
// evaluate it (see the top of this file).
fn evaluate(out: ptr<function, array<F, 10>>) -> bool {
    let A1 = slot(0u);
    let A2 = slot(1u);
    let L1 = slot(2u);
    let L2 = slot(3u);
    let U1 = slot(4u);
    let U2 = slot(5u);
    let M = slot(6u);
    let T1 = slot(7u);
    let T2 = slot(8u);
    let T3 = slot(9u);
    let MU1 = vslot(0u);
    let MU2 = vslot(1u);
    let DMU = vslot(2u);
    let Z = vslot(3u);
    let X = vslot(4u);
    let need_kl = WRITE_CE || WRITE_KL || WRITE_JEFFREYS;
    let need_rkl = WRITE_REVERSE_KL || WRITE_JEFFREYS;
    let need_db = WRITE_BHATTACHARYYA || WRITE_BHATTACHARYYA_COEFFICIENT || WRITE_HELLINGER;
    let need_w2 = WRITE_WASSERSTEIN2;

    if ((need_w2 && W2_ON_HOST) || !side_valid(1u, KIND1) || !side_valid(2u, KIND2)) {
        return false;
    }
    // A common power of 4 brings the variances near 1.
    let e = -((scale_exp_of(1u, KIND1) + scale_exp_of(2u, KIND2)) / 4);
    load(1u, KIND1, A1, factor_exp(KIND1, e));
    load(2u, KIND2, A2, factor_exp(KIND2, e));
    for (var i = 0u; i < D; i++) {
        put(MU1 + i, scale2(inp(mu_at(1u) + i), e));
        put(MU2 + i, scale2(inp(mu_at(2u) + i), e));
        put(DMU + i, at(MU1 + i) - at(MU2 + i));
    }
    if (!factor(KIND1, A1, L1, U1, T1) || !factor(KIND2, A2, L2, U2, T1)) {
        return false;
    }

    // Entropies: d/2(1 + ln 2π) + ln det Σ^½ of the unscaled input.
    let h0 = F(i32(D)) * HALF_LN_2PI_E;
    let de = i32(D) * e;
    let h1 = select(h0 + ln_diag(L1, -de), h0 - ln_diag(U1, de), KIND1 == KIND_PREC);
    let h2 = select(h0 + ln_diag(L2, -de), h0 - ln_diag(U2, de), KIND2 == KIND_PREC);
    (*out)[2] = h1;
    (*out)[3] = h2;
    if (!(need_kl || need_rkl || need_db || need_w2)) {
        return true;
    }

    // M = L2⁻¹L1 and the regime.
    if (KIND2 == KIND_PREC) {
        mul(U2, true, L1, false, M);
    } else {
        copy_to(L1, M, D * D);
        solve_lower(L2, M, D);
    }
    mul(M, false, M, true, T1);
    var nn = F(0.0);
    for (var i = 0u; i < D; i++) {
        for (var j = 0u; j < D; j++) {
            let v = at(T1 + i * D + j) - select(F(0.0), F(1.0), i == j);
            nn = nn + v * v;
        }
    }
    // Close together (or not a number): the CPU's near forms.
    if (!(nn >= 0.25)) {
        return false;
    }

    // Mean parts.
    let q2 = whiten(KIND2, L2, U2, DMU, Z);
    let q1 = whiten(KIND1, L1, U1, DMU, X);
    var kl = run_time_nan(q2);
    var rkl = kl;
    var db_scale = kl;
    var b2 = kl;
    if (need_kl) {
        kl = kl_far(L1, L2, M);
    }
    if (need_rkl) {
        if (KIND1 == KIND_PREC) {
            mul(U1, true, L2, false, T1);
        } else {
            copy_to(L2, T1, D * D);
            solve_lower(L1, T1, D);
        }
        rkl = kl_far(L2, L1, T1);
    }
    if (need_db) {
        copy_to(M, T1, D * D);
        one_sided_jacobi(T1, T2, false);
        var s = F(0.0);
        for (var k = 0u; k < D; k++) {
            let sigma = sqrt_f(column_norm2(T1, k));
            let z = bitcast<U>(F(0.0));
            s = s + measures(vec4<U>(z, bitcast<U>(sigma), z, bitcast<U>(F(1.0))))[6];
        }
        db_scale = s;
    }
    if (need_w2) {
        b2 = bures_far(L1, L2, T1, T2, T3);
    }
    kl = kl + 0.5 * q2;
    rkl = rkl + 0.5 * q1;
    (*out)[1] = kl;
    (*out)[0] = h1 + kl;
    (*out)[4] = rkl;
    (*out)[5] = kl + rkl;
    if (need_db) {
        // ⅛ΔμᵀΣ̄⁻¹Δμ = ¼ z2ᵀ(I + MMᵀ)⁻¹z2, z2 = L2⁻¹Δμ (in Z).
        mul(M, false, M, true, T1);
        for (var i = 0u; i < D; i++) {
            put(T1 + i * D + i, at(T1 + i * D + i) + 1.0);
        }
        if (!cholesky(T1, T2)) {
            return false;
        }
        solve_lower(T2, Z, 1u);
        let mean = 0.5 * 0.5 * norm2(Z, D);
        let db = mean + db_scale;
        if (REFINE_BC && !(db <= F(BC_REFINE_LIMIT))) {
            return false;
        }
        let ch = coefficient_hellinger(db);
        (*out)[6] = db;
        (*out)[7] = ch.x;
        (*out)[8] = ch.y;
    }
    if (need_w2) {
        let w2 = sqrt_f(norm2(DMU, D) + b2);
        (*out)[9] = scale2(w2, -e);
    }
    return true;
}

// The exponent of side kind's loaded matrix for the pair's common scaling 4^e.
fn factor_exp(kind: u32, e: i32) -> i32 {
    if (kind == KIND_COV) {
        return 2 * e;
    } else if (kind == KIND_TRIL) {
        return e;
    }
    return -2 * e;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main_mvn(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = invocation_index(wid, nwg, lid);
    KIND1 = mvn_header.y;
    KIND2 = mvn_header.z;
    let probe = mvn_header.w;
    let n = arrayLength(&pairs) * 4u / pair_stride();
    NINV = arrayLength(&ws) / scratch_per_pair();
    if (i >= n || i >= NINV || mvn_header.x != D) {
        return;
    }
    INV = i;
    PAIR_BASE = i * pair_stride();
    var out: array<F, 10>;
    let nan = run_time_nan(F(f32(i)));
    for (var k = 0u; k < 10u; k++) {
        out[k] = nan;
    }
    if (!evaluate(&out) || !loops_completed(probe)) {
        for (var k = 0u; k < 10u; k++) {
            out[k] = nan;
        }
    }
    write_row(i, out);
}

// Whether every loop before this point ran to its end. llvmpipe (Mesa's
// software Vulkan driver) stops all loops of an invocation once their
// iterations add up to 65535 (LP_MAX_TGSI_LOOP_ITERATIONS, shared by every
// loop of the shader, so that a runaway loop cannot hang the CPU): each loop
// after that runs its body once and leaves, with no error, and the results
// are silently wrong (Jacobi sweeps, Cholesky at d = 64). This loop runs
// `probe` (2, from the header: not a constant, so that it is not unrolled)
// iterations last: it runs both only if that limit was not reached, and a
// row it flags is evaluated by the host on the CPU. Other devices have no
// such limit and always pass.
fn loops_completed(probe: u32) -> bool {
    var n = 0u;
    for (var k = 0u; k < probe; k++) {
        n = n + 1u;
    }
    return n == probe;
}
