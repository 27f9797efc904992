// Small dense linear algebra of the full-covariance kernel: the GPU mirror of
// src/mvn/linalg.rs (the routines the far-apart formulas use), statement
// for statement in the same order, so that both round alike.
//
// Every matrix is D x D, row-major, and lives in this invocation's part of
// the scratch binding `ws`: element e of the invocation at ws[e * NINV + INV]
// (consecutive invocations side by side, so that a warp's accesses are
// contiguous). A matrix or vector is named by the offset of its first
// element, in elements (see mvn.wgsl for the slots).

// The dimension d: a pipeline constant (one pipeline per d, created on
// first use). Read at run time, from a uniform or the input, the loops below
// ran with run-time bounds, and on llvmpipe every loop iteration of an
// invocation counts against one shared limit (see `loops_completed` in
// mvn.wgsl); constant bounds let the compiler unroll the short loops, which
// keeps the kernel within that limit for d up to about 16.
override D: u32 = 1u;

@group(0) @binding(2) var<storage, read_write> ws: array<F>;

// This invocation's index within the dispatch and the number of invocations
// the scratch binding holds (set once by the entry point).
var<private> INV: u32;
var<private> NINV: u32;

fn at(k: u32) -> F {
    return ws[k * NINV + INV];
}

fn put(k: u32, v: F) {
    ws[k * NINV + INV] = v;
}

// linalg::max
fn maxf(a: F, b: F) -> F {
    return select(b, a, a >= b);
}

// linalg::identity
fn identity(a: u32) {
    for (var i = 0u; i < D; i++) {
        for (var j = 0u; j < D; j++) {
            put(a + i * D + j, select(F(0.0), F(1.0), i == j));
        }
    }
}

// linalg::transpose: b = a^T.
fn transpose(a: u32, b: u32) {
    for (var i = 0u; i < D; i++) {
        for (var j = 0u; j < D; j++) {
            put(b + j * D + i, at(a + i * D + j));
        }
    }
}

// a copied to b (n elements).
fn copy_to(a: u32, b: u32, n: u32) {
    for (var k = 0u; k < n; k++) {
        put(b + k, at(a + k));
    }
}

// linalg::mul: c = op(a) op(b), op the transpose where ta / tb say.
fn mul(a: u32, ta: bool, b: u32, tb: bool, c: u32) {
    for (var i = 0u; i < D; i++) {
        for (var j = 0u; j < D; j++) {
            var s = F(0.0);
            for (var k = 0u; k < D; k++) {
                let ia = select(i * D + k, k * D + i, ta);
                let ib = select(k * D + j, j * D + k, tb);
                s = s + at(a + ia) * at(b + ib);
            }
            put(c + i * D + j, s);
        }
    }
}

// linalg::norm2: squared norm of n elements.
fn norm2(a: u32, n: u32) -> F {
    var s = F(0.0);
    for (var k = 0u; k < n; k++) {
        let v = at(a + k);
        s = s + v * v;
    }
    return s;
}

// Whether a pivot is usable: positive and finite (linalg's `p > 0 && p <= MAX`, on the bits).
fn good_pivot(p: F) -> bool {
    return p > 0.0 && is_finite_bits(bitcast<U>(p));
}

// linalg::cholesky: lower factor l of the symmetric a (lower triangle read);
// false when a pivot is not positive.
fn cholesky(a: u32, l: u32) -> bool {
    for (var j = 0u; j < D; j++) {
        var p = at(a + j * D + j);
        for (var k = 0u; k < j; k++) {
            let v = at(l + j * D + k);
            p = p - v * v;
        }
        if (!good_pivot(p)) {
            return false;
        }
        let ljj = sqrt_f(p);
        put(l + j * D + j, ljj);
        for (var i = j + 1u; i < D; i++) {
            var s = at(a + i * D + j);
            for (var k = 0u; k < j; k++) {
                s = s - at(l + i * D + k) * at(l + j * D + k);
            }
            put(l + i * D + j, s / ljj);
        }
        for (var i = 0u; i < j; i++) {
            put(l + i * D + j, F(0.0));
        }
    }
    return true;
}

// linalg::cholesky_rev: upper u with a = u u^T (reversed order).
fn cholesky_rev(a: u32, u: u32) -> bool {
    for (var jj = 0u; jj < D; jj++) {
        let j = D - 1u - jj;
        var p = at(a + j * D + j);
        for (var k = j + 1u; k < D; k++) {
            let v = at(u + j * D + k);
            p = p - v * v;
        }
        if (!good_pivot(p)) {
            return false;
        }
        let ujj = sqrt_f(p);
        put(u + j * D + j, ujj);
        for (var i = 0u; i < j; i++) {
            var s = at(a + j * D + i);
            for (var k = j + 1u; k < D; k++) {
                s = s - at(u + i * D + k) * at(u + j * D + k);
            }
            put(u + i * D + j, s / ujj);
        }
        for (var i = j + 1u; i < D; i++) {
            put(u + i * D + j, F(0.0));
        }
    }
    return true;
}

// linalg::solve_lower: b <- l^-1 b, b of D x cols.
fn solve_lower(l: u32, b: u32, cols: u32) {
    for (var c = 0u; c < cols; c++) {
        for (var i = 0u; i < D; i++) {
            var s = at(b + i * cols + c);
            for (var k = 0u; k < i; k++) {
                s = s - at(l + i * D + k) * at(b + k * cols + c);
            }
            put(b + i * cols + c, s / at(l + i * D + i));
        }
    }
}

// linalg::solve_upper: b <- u^-1 b.
fn solve_upper(u: u32, b: u32, cols: u32) {
    for (var c = 0u; c < cols; c++) {
        for (var ii = 0u; ii < D; ii++) {
            let i = D - 1u - ii;
            var s = at(b + i * cols + c);
            for (var k = i + 1u; k < D; k++) {
                s = s - at(u + i * D + k) * at(b + k * cols + c);
            }
            put(b + i * cols + c, s / at(u + i * D + i));
        }
    }
}

// linalg::inverse_upper_t: l = u^-T.
fn inverse_upper_t(u: u32, l: u32, tmp: u32) {
    identity(tmp);
    solve_upper(u, tmp, D);
    transpose(tmp, l);
}

// linalg::column_norm2: squared norm of column j.
fn column_norm2(a: u32, j: u32) -> F {
    var s = F(0.0);
    for (var i = 0u; i < D; i++) {
        let x = at(a + i * D + j);
        s = s + x * x;
    }
    return s;
}

// linalg::one_sided_jacobi: a <- a V with orthogonal columns; V accumulated
// in v when with_v.
fn one_sided_jacobi(a: u32, v: u32, with_v: bool) {
    if (with_v) {
        identity(v);
    }
    for (var sweep = 0u; sweep < 60u; sweep++) {
        var rotated = false;
        for (var p = 0u; p < D; p++) {
            for (var q = p + 1u; q < D; q++) {
                var al = F(0.0);
                var be = F(0.0);
                var ga = F(0.0);
                for (var i = 0u; i < D; i++) {
                    let x = at(a + i * D + p);
                    let y = at(a + i * D + q);
                    al = al + x * x;
                    be = be + y * y;
                    ga = ga + x * y;
                }
                // (An if around the rotation rather than `continue`: same logic.)
                if (abs(ga) > EPS * sqrt_f(al * be)) {
                    rotated = true;
                    let zeta = (be - al) / (2.0 * ga);
                    let big = abs(zeta) > 1.0 / EPS;
                    let t0 = 1.0 / (abs(zeta) + sqrt_f(1.0 + zeta * zeta));
                    let t1 = 0.5 / abs(zeta);
                    let t2 = select(t0, t1, big);
                    let t = select(t2, -t2, zeta < 0.0);
                    let c = 1.0 / sqrt_f(1.0 + t * t);
                    let s = c * t;
                    for (var i = 0u; i < D; i++) {
                        let x = at(a + i * D + p);
                        let y = at(a + i * D + q);
                        put(a + i * D + p, c * x - s * y);
                        put(a + i * D + q, s * x + c * y);
                    }
                    if (with_v) {
                        for (var i = 0u; i < D; i++) {
                            let x = at(v + i * D + p);
                            let y = at(v + i * D + q);
                            put(v + i * D + p, c * x - s * y);
                            put(v + i * D + q, s * x + c * y);
                        }
                    }
                }
            }
        }
        if (!rotated) {
            break;
        }
    }
}
