// gaussdiv: diagonal multivariate Gaussians, p = N(mu1, diag(sigma1^2)),
// q = N(mu2, diag(sigma2^2)) in D dimensions.
//
// Assembled (src/gpu/kernel.rs, DIAGONAL_SHADER_SOURCE and its f64 twin)
// after a precision prelude, io.wgsl, ln_exp.wgsl and measures.wgsl: it
// reuses `measures`, the bindings, the WRITE_* / PARAM overrides,
// `write_row` and the exact-error helpers (fast_two_sum, exact_sub, frexp1,
// pow2, exp_split, expm1, scale_exp); the same text serves the f32 and the
// f64 module (docs/ARCHITECTURE.md §2.10, §2.11).
//
// Input binding 0: rows x D pairs, row-major (row r, dim d at r * D + d).
// Output binding 1: rows x k values (the selected measures, canonical order).
// Both bindings are bound to exactly one chunk of whole rows, so
// rows = arrayLength(&results) / k and D = arrayLength(&pairs) / rows.
//
// Per row: the additive measures (cross_entropy, kl, entropy, entropy_q,
// reverse_kl, jeffreys, bhattacharyya) are summed over the dims; the
// coefficient is exp(-sum D_B), Hellinger sqrt(-expm1(-sum D_B)), and
// Wasserstein-2 sqrt(sum W_d^2) (squares summed at a running power-of-two
// scale, so that nothing over- or underflows). Where exp and expm1 of the sum
// would lose relative accuracy (docs/ARCHITECTURE.md §2.10): the coefficient
// is the product of the per-dim coefficients (pm * 2^pe) where S > D, and
// Hellinger of S < 1/4 is sqrt(S) sqrt(phi(S)), phi(S) = -expm1(-S) / S, with
// sqrt(S) from the scaled sum of squares of r_d = sqrt(D_d) (or H_d where
// D_d < 2^-60).
//
// KEEP IN SYNC with src/diagonal.rs (RowSum: the same state, the same
// operations in the same order, the same lane split and reduction tree), so
// that the CPU and GPU results agree to the last bits wherever the per-dim
// values do.
//
// Summation: compensated (the running sum h and the sum l of the exact errors
// of every addition, each error from fast_two_sum, whose cancelling
// subtraction is done on the bit patterns so no compiler can simplify it away).
// Error <= eps |S| + (D eps)^2 sum |terms| (Ogita-Rump-Oishi Sum2).
//
// Entry points (same bind group layout as `main`):
// * main_diagonal: one invocation per row, dims in order (D < 256, the host's
//   choice: WIDE_DIMS in src/diagonal.rs);
// * main_diagonal_wide: one workgroup of DIAG_LANES invocations per row (large
//   D): lane t sums dims t, t + DIAG_LANES, ... in order, then a tree over the
//   lanes in workgroup memory (strides 32, 16, ..., 1).

const DIAG_LANES: u32 = 64u;
const DIAG_W: u32 = 7u;            // state slot of the Wasserstein sum of squares
const DIAG_HS: u32 = 8u;           // state slot of Hellinger's sum of squares
const FLAG_W_INF: u32 = 512u;      // 1 << 9: Wasserstein-2 infinite
const FLAG_BC_ZERO: u32 = 1024u;   // 1 << 10: a per-dim coefficient is 0
// The floor of the coefficient product's exponent (no wrap with millions of tiny coefficients).
const PE_FLOOR: i32 = -1048576;    // -(1 << 20)
const FLAG_INVALID: u32 = 0x80000000u;
const SQ_CUTOFF: i32 = -60;        // squares below 4^-60 of the running scale are dropped

struct DiagState {
    // Slots 0..6: the additive measures in canonical order; slot 7: the sum
    // of (W_d / 2^we)^2; slot 8: the sum of (r_d / 2^he)^2.
    h: array<F, 9>,
    l: array<F, 9>,
    we: i32,
    he: i32,
    // The product of the per-dim coefficients, pm * 2^pe, pm in [1, 2).
    pm: F,
    pe: i32,
    // Dims accumulated.
    n: u32,
    // Bit j (j <= 6): measure j is +inf; FLAG_W_INF; FLAG_BC_ZERO; FLAG_INVALID: an invalid element.
    flags: u32,
}

var<workgroup> diag_lanes: array<DiagState, DIAG_LANES>;

fn diag_empty() -> DiagState {
    return DiagState(
        array<F, 9>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        array<F, 9>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        NO_EXP,
        NO_EXP,
        1.0,
        0,
        0u,
        0u,
    );
}

// a + b = h + l exactly (normal range), any order of magnitudes.
fn two_sum(a: F, b: F) -> Pair2 {
    let swap = abs(a) < abs(b);
    return fast_two_sum(select(a, b, swap), select(b, a, swap));
}

// x * 4^d for d <= 0; 0 below 4^SQ_CUTOFF.
fn scale_sq(x: F, d: i32) -> F {
    return select(0.0, x * pow2(2 * d), d >= SQ_CUTOFF);
}

// Whether slot j is needed by the selected measures (pipeline constants).
fn diag_needs(j: u32) -> bool {
    switch j {
        case 0u: { return WRITE_CE; }
        case 1u: { return WRITE_KL; }
        case 2u: { return WRITE_ENTROPY; }
        case 3u: { return WRITE_ENTROPY_Q; }
        case 4u: { return WRITE_REVERSE_KL; }
        case 5u: { return WRITE_JEFFREYS; }
        case 6u: { return WRITE_BHATTACHARYYA || WRITE_BHATTACHARYYA_COEFFICIENT || WRITE_HELLINGER; }
        default: { return WRITE_WASSERSTEIN2; }
    }
}

// Add the value v of additive slot j.
fn diag_add_term(st: ptr<function, DiagState>, j: u32, v: F) {
    if (!is_finite_bits(bitcast<U>(v))) {
        (*st).flags = (*st).flags | (1u << j);
        return;
    }
    let h = (*st).h[j];
    // Positive overflow by comparison (the sums are bounded below by about -104 D).
    if (0.5 * h + 0.5 * v > 0.5 * F_MAX) {
        (*st).flags = (*st).flags | (1u << j);
        return;
    }
    let t = two_sum(h, v);
    (*st).h[j] = t.h;
    (*st).l[j] = (*st).l[j] + t.l;
}

// A sum of squares (h + l) * 4^e.
struct SqSum {
    h: F,
    l: F,
    e: i32,
}

// Add w^2 (w > 0 finite) to a sum of squares, rescaling it when w sets a new
// largest exponent.
fn sq_add(a: SqSum, w: F) -> SqSum {
    var r = a;
    let f = frexp1(bitcast<U>(w));
    if (f.k > r.e) {
        let d = r.e - f.k;
        r.h = scale_sq(r.h, d);
        r.l = scale_sq(r.l, d);
        r.e = f.k;
    }
    let x = f.k - r.e;
    let tm = select(0.0, f.m * pow2(x), x >= SQ_CUTOFF);
    let t = two_sum(r.h, tm * tm);
    r.h = t.h;
    r.l = r.l + t.l;
    return r;
}

// The union of two sums of squares.
fn sq_merge(a: SqSum, b: SqSum) -> SqSum {
    let e = max(a.e, b.e);
    let ah = scale_sq(a.h, a.e - e);
    let al = scale_sq(a.l, a.e - e);
    let bh = scale_sq(b.h, b.e - e);
    let bl = scale_sq(b.l, b.e - e);
    let t = two_sum(ah, bh);
    return SqSum(t.h, (al + bl) + t.l, e);
}

// sqrt((h + l) * 4^e) as m * 2^k; (0, 0) for an empty sum.
fn sq_root(a: SqSum) -> Frexp {
    let s = a.h + a.l;
    let has = s > 0.0;
    let f = frexp1(bitcast<U>(select(1.0, sqrt_f(s), has)));
    return Frexp(select(0.0, f.m, has), select(0, f.k + a.e, has));
}

// m in [1, 4) renormalised to [1, 2) (exact): (m, exponent increment).
fn renorm(m: F) -> Frexp {
    let big = m >= 2.0;
    return Frexp(select(m, 0.5 * m, big), select(0, 1, big));
}

// Add W_d^2 at the running scale 4^we.
fn diag_add_w(st: ptr<function, DiagState>, w: F) {
    if (!is_finite_bits(bitcast<U>(w))) {
        (*st).flags = (*st).flags | FLAG_W_INF;
        return;
    }
    if (w > 0.0) {
        let r = sq_add(SqSum((*st).h[DIAG_W], (*st).l[DIAG_W], (*st).we), w);
        (*st).h[DIAG_W] = r.h;
        (*st).l[DIAG_W] = r.l;
        (*st).we = r.e;
    }
}

// Hellinger's r_d: sqrt(D_d), or H_d where D_d < 2^-60.
fn diag_add_hellinger(st: ptr<function, DiagState>, db: F, hd: F) {
    let r = select(sqrt_f(db), hd, db < pow2(-60));
    if (is_finite_bits(bitcast<U>(r)) && r > 0.0) {
        let a = sq_add(SqSum((*st).h[DIAG_HS], (*st).l[DIAG_HS], (*st).he), r);
        (*st).h[DIAG_HS] = a.h;
        (*st).l[DIAG_HS] = a.l;
        (*st).he = a.e;
    }
}

// Multiply the running product by a per-dim coefficient (<= 1).
fn diag_add_coefficient(st: ptr<function, DiagState>, bc: F) {
    if (bc > 0.0) {
        let f = frexp1(bitcast<U>(bc));
        let r = renorm((*st).pm * f.m);
        (*st).pm = r.m;
        (*st).pe = max((*st).pe + f.k + r.k, PE_FLOOR);
    } else {
        (*st).flags = (*st).flags | FLAG_BC_ZERO;
    }
}

// Add one element (the measures of one dim).
fn diag_add(st: ptr<function, DiagState>, d: array<F, 10>) {
    if (is_nan_bits(bitcast<U>(d[2]))) {
        (*st).flags = (*st).flags | FLAG_INVALID;
        return;
    }
    (*st).n = (*st).n + 1u;
    if (diag_needs(0u)) { diag_add_term(st, 0u, d[0]); }
    if (diag_needs(1u)) { diag_add_term(st, 1u, d[1]); }
    if (diag_needs(2u)) { diag_add_term(st, 2u, d[2]); }
    if (diag_needs(3u)) { diag_add_term(st, 3u, d[3]); }
    if (diag_needs(4u)) { diag_add_term(st, 4u, d[4]); }
    if (diag_needs(5u)) { diag_add_term(st, 5u, d[5]); }
    if (diag_needs(6u)) { diag_add_term(st, 6u, d[6]); }
    if (WRITE_BHATTACHARYYA_COEFFICIENT) { diag_add_coefficient(st, d[7]); }
    if (WRITE_HELLINGER) { diag_add_hellinger(st, d[6], d[8]); }
    if (diag_needs(DIAG_W)) { diag_add_w(st, d[9]); }
}

// Merge slot j of b into a.
fn diag_merge_term(a: ptr<function, DiagState>, b: DiagState, j: u32) {
    let ah = (*a).h[j];
    let bh = b.h[j];
    if (0.5 * ah + 0.5 * bh > 0.5 * F_MAX) {
        (*a).flags = (*a).flags | (1u << j);
        return;
    }
    let t = two_sum(ah, bh);
    (*a).h[j] = t.h;
    (*a).l[j] = ((*a).l[j] + b.l[j]) + t.l;
}

// The state of the union of two sets of dims.
fn diag_combine(x: DiagState, b: DiagState) -> DiagState {
    var a = x;
    a.flags = a.flags | b.flags;
    a.n = a.n + b.n;
    if (diag_needs(0u)) { diag_merge_term(&a, b, 0u); }
    if (diag_needs(1u)) { diag_merge_term(&a, b, 1u); }
    if (diag_needs(2u)) { diag_merge_term(&a, b, 2u); }
    if (diag_needs(3u)) { diag_merge_term(&a, b, 3u); }
    if (diag_needs(4u)) { diag_merge_term(&a, b, 4u); }
    if (diag_needs(5u)) { diag_merge_term(&a, b, 5u); }
    if (diag_needs(6u)) { diag_merge_term(&a, b, 6u); }
    if (WRITE_BHATTACHARYYA_COEFFICIENT) {
        let r = renorm(a.pm * b.pm);
        a.pm = r.m;
        a.pe = max(a.pe + b.pe + r.k, PE_FLOOR);
    }
    if (WRITE_HELLINGER) {
        let r = sq_merge(SqSum(a.h[DIAG_HS], a.l[DIAG_HS], a.he), SqSum(b.h[DIAG_HS], b.l[DIAG_HS], b.he));
        a.h[DIAG_HS] = r.h;
        a.l[DIAG_HS] = r.l;
        a.he = r.e;
    }
    if (diag_needs(DIAG_W)) {
        let r = sq_merge(SqSum(a.h[DIAG_W], a.l[DIAG_W], a.we), SqSum(b.h[DIAG_W], b.l[DIAG_W], b.we));
        a.h[DIAG_W] = r.h;
        a.l[DIAG_W] = r.l;
        a.we = r.e;
    }
    return a;
}

// The ten measures of the joint distribution, canonical order.
fn diag_finish(st: DiagState) -> array<F, 10> {
    let inf = run_time_inf(st.pm);
    let nan = run_time_nan(st.pm);
    var v: array<F, 10>;
    for (var j = 0u; j < 7u; j = j + 1u) {
        v[j] = select(st.h[j] + st.l[j], inf, (st.flags & (1u << j)) != 0u);
    }
    // D_B = h + l: exp(-h - l) ~ exp(-h) (1 - l), or the product where S > D.
    let db_inf = (st.flags & (1u << 6u)) != 0u;
    let dh = st.h[6];
    let dl = st.l[6];
    let big = db_inf || dh > EXP_ARG_MAX;
    let exs = exp_split(-select(dh, EXP_ARG_MAX, big));
    let ex = exs.m * (1.0 - select(dl, 0.0, big));
    let product = dh > F(i32(st.n));
    let bc = scale_exp(select(ex, st.pm, product), select(exs.k, st.pe, product)).v;
    v[7] = select(bc, 0.0, (st.flags & FLAG_BC_ZERO) != 0u);
    // Hellinger: sqrt(-expm1(-S)), or sqrt(S) sqrt(phi(S)) for S < 1/4.
    let dsum = select(dh + dl, EXP_ARG_MAX, big);
    let small = !big && dh < 0.25;
    let phi = select(-expm1(-dsum) / dsum, 1.0, dsum < pow2(-60));
    let rh = sq_root(SqSum(st.h[DIAG_HS], st.l[DIAG_HS], st.he));
    let hs = scale_exp(rh.m * sqrt_f(phi), rh.k).v;
    v[8] = select(sqrt_f(-expm1(-dsum)), hs, small);
    // W = sqrt(h + l) * 2^we.
    let rw = sq_root(SqSum(st.h[DIAG_W], st.l[DIAG_W], st.we));
    let ws = scale_exp(rw.m, rw.k);
    v[9] = select(ws.v, inf, (st.flags & FLAG_W_INF) != 0u || ws.inf);
    if ((st.flags & FLAG_INVALID) != 0u) {
        v = array<F, 10>(nan, nan, nan, nan, nan, nan, nan, nan, nan, nan);
    }
    return v;
}

// Values written per row (the number of WRITE_* set).
fn diag_k() -> u32 {
    return select(0u, 1u, WRITE_CE) + select(0u, 1u, WRITE_KL) + select(0u, 1u, WRITE_ENTROPY)
        + select(0u, 1u, WRITE_ENTROPY_Q) + select(0u, 1u, WRITE_REVERSE_KL) + select(0u, 1u, WRITE_JEFFREYS)
        + select(0u, 1u, WRITE_BHATTACHARYYA) + select(0u, 1u, WRITE_BHATTACHARYYA_COEFFICIENT)
        + select(0u, 1u, WRITE_HELLINGER) + select(0u, 1u, WRITE_WASSERSTEIN2);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main_diagonal(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = invocation_index(wid, nwg, lid);
    let rows = arrayLength(&results) / diag_k();
    if (row >= rows) {
        return;
    }
    let dims = arrayLength(&pairs) / rows;
    var st = diag_empty();
    let base = row * dims;
    for (var d = 0u; d < dims; d = d + 1u) {
        diag_add(&st, measures(pairs[base + d]));
    }
    write_row(row, diag_finish(st));
}

@compute @workgroup_size(DIAG_LANES)
fn main_diagonal_wide(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // One workgroup per row (uniform across the workgroup).
    let row = wid.y * nwg.x + wid.x;
    let rows = arrayLength(&results) / diag_k();
    let in_range = row < rows;
    let dims = arrayLength(&pairs) / max(rows, 1u);
    var st = diag_empty();
    if (in_range) {
        let base = row * dims;
        for (var d = lid; d < dims; d = d + DIAG_LANES) {
            diag_add(&st, measures(pairs[base + d]));
        }
    }
    diag_lanes[lid] = st;
    workgroupBarrier();
    for (var stride = DIAG_LANES / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            diag_lanes[lid] = diag_combine(diag_lanes[lid], diag_lanes[lid + stride]);
        }
        workgroupBarrier();
    }
    if (in_range && lid == 0u) {
        write_row(row, diag_finish(diag_lanes[0]));
    }
}
