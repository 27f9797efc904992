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
// scale, so that nothing over- or underflows).
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
const FLAG_W_INF: u32 = 512u;      // 1 << 9: Wasserstein-2 infinite
const FLAG_INVALID: u32 = 0x80000000u;
const SQ_CUTOFF: i32 = -60;        // squares below 4^-60 of the running scale are dropped

struct DiagState {
    // Slots 0..6: the additive measures in canonical order; slot 7: the sum
    // of (W_d / 2^we)^2.
    h: array<F, 8>,
    l: array<F, 8>,
    we: i32,
    // Bit j (j <= 6): measure j is +inf; FLAG_W_INF; FLAG_INVALID: an invalid element.
    flags: u32,
}

var<workgroup> diag_lanes: array<DiagState, DIAG_LANES>;

fn diag_empty() -> DiagState {
    return DiagState(
        array<F, 8>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        array<F, 8>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        NO_EXP,
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

// Add W_d^2 at the running scale 4^we.
fn diag_add_w(st: ptr<function, DiagState>, w: F) {
    let bits = bitcast<U>(w);
    if (!is_finite_bits(bits)) {
        (*st).flags = (*st).flags | FLAG_W_INF;
        return;
    }
    if (w <= 0.0) {
        return;
    }
    let f = frexp1(bits);
    if (f.k > (*st).we) {
        let d = (*st).we - f.k;
        (*st).h[DIAG_W] = scale_sq((*st).h[DIAG_W], d);
        (*st).l[DIAG_W] = scale_sq((*st).l[DIAG_W], d);
        (*st).we = f.k;
    }
    let e = f.k - (*st).we;
    let tm = select(0.0, f.m * pow2(e), e >= SQ_CUTOFF);
    let t = two_sum((*st).h[DIAG_W], tm * tm);
    (*st).h[DIAG_W] = t.h;
    (*st).l[DIAG_W] = (*st).l[DIAG_W] + t.l;
}

// Add one element (the measures of one dim).
fn diag_add(st: ptr<function, DiagState>, d: array<F, 10>) {
    if (is_nan_bits(bitcast<U>(d[2]))) {
        (*st).flags = (*st).flags | FLAG_INVALID;
        return;
    }
    if (diag_needs(0u)) { diag_add_term(st, 0u, d[0]); }
    if (diag_needs(1u)) { diag_add_term(st, 1u, d[1]); }
    if (diag_needs(2u)) { diag_add_term(st, 2u, d[2]); }
    if (diag_needs(3u)) { diag_add_term(st, 3u, d[3]); }
    if (diag_needs(4u)) { diag_add_term(st, 4u, d[4]); }
    if (diag_needs(5u)) { diag_add_term(st, 5u, d[5]); }
    if (diag_needs(6u)) { diag_add_term(st, 6u, d[6]); }
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
    if (diag_needs(0u)) { diag_merge_term(&a, b, 0u); }
    if (diag_needs(1u)) { diag_merge_term(&a, b, 1u); }
    if (diag_needs(2u)) { diag_merge_term(&a, b, 2u); }
    if (diag_needs(3u)) { diag_merge_term(&a, b, 3u); }
    if (diag_needs(4u)) { diag_merge_term(&a, b, 4u); }
    if (diag_needs(5u)) { diag_merge_term(&a, b, 5u); }
    if (diag_needs(6u)) { diag_merge_term(&a, b, 6u); }
    if (diag_needs(DIAG_W)) {
        let we = max(a.we, b.we);
        let ah = scale_sq(a.h[DIAG_W], a.we - we);
        let al = scale_sq(a.l[DIAG_W], a.we - we);
        let bh = scale_sq(b.h[DIAG_W], b.we - we);
        let bl = scale_sq(b.l[DIAG_W], b.we - we);
        let t = two_sum(ah, bh);
        a.h[DIAG_W] = t.h;
        a.l[DIAG_W] = (al + bl) + t.l;
        a.we = we;
    }
    return a;
}

// The ten measures of the joint distribution, canonical order.
fn diag_finish(st: DiagState) -> array<F, 10> {
    let inf = bitcast<F>(INF_BITS);
    let nan = bitcast<F>(NAN_BITS);
    var v: array<F, 10>;
    for (var j = 0u; j < 7u; j = j + 1u) {
        v[j] = select(st.h[j] + st.l[j], inf, (st.flags & (1u << j)) != 0u);
    }
    // D_B = h + l: exp(-h - l) ~ exp(-h) (1 - l).
    let db_inf = (st.flags & (1u << 6u)) != 0u;
    let dh = st.h[6];
    let dl = st.l[6];
    let big = db_inf || dh > EXP_ARG_MAX;
    let exs = exp_split(-select(dh, EXP_ARG_MAX, big));
    let ex = exs.m * (1.0 - select(dl, 0.0, big));
    v[7] = scale_exp(ex, exs.k).v;
    let dsum = select(dh + dl, EXP_ARG_MAX, big);
    v[8] = sqrt_f(-expm1(-dsum));
    // W = sqrt(h + l) * 2^we.
    let s = st.h[DIAG_W] + st.l[DIAG_W];
    let has_w = s > 0.0;
    let rt = frexp1(bitcast<U>(select(1.0, sqrt_f(s), has_w)));
    let ws = scale_exp(rt.m, rt.k + st.we);
    let w_inf = (st.flags & FLAG_W_INF) != 0u || (has_w && ws.inf);
    v[9] = select(select(0.0, ws.v, has_w), inf, w_inf);
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
