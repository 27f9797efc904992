//! The diagonal multivariate layout's reduction over dims, shared by the
//! CPU paths (f32 and f64) and mirrored by the GPU kernel.
//!
//! KEEP IN SYNC with `shaders/diagonal.wgsl`: the same state ([`RowSum`] is
//! `DiagState`), the same operations in the same order, the same lane split
//! ([`LANES`] = `DIAG_LANES`) and reduction tree, so that CPU and GPU agree to
//! the last bits wherever the per-dim values do.
//!
//! For independent dims the additive measures (cross-entropy, KL, the two
//! entropies, reverse KL, Jeffreys, Bhattacharyya distance) of the joint
//! distribution are the sums of the per-dim values; the coefficient is
//! exp(−Σ D_B), Hellinger √(−expm1(−Σ D_B)) and Wasserstein-2 √(Σ W_d²).
//!
//! Sums are compensated (Ogita–Rump–Oishi Sum2): a running sum `h` and the
//! sum `l` of the exact error of every addition — from Knuth's TwoSum here
//! (IEEE arithmetic on the CPU), from the bit-pattern Fast2Sum of
//! `math::fast_two_sum` in the kernel (proof against a GPU compiler's
//! algebraic rewriting); the two agree wherever both are exact. The error of `h + l` is at most about
//! ε|S| + (Dε)²·Σ|terms|. The squares W_d² are summed at a running
//! power-of-two scale 4^`we`, so that nothing over- or underflows.
//!
//! The two transforms of Σ D_B keep their relative accuracy where exp and
//! expm1 of the sum would not (ARCHITECTURE §2.10):
//! * the coefficient is also formed as the product Π BC_d of the per-dim
//!   coefficients, at a running power-of-two scale (`pm`·2^`pe`); the sum's
//!   error is about ε·S, the product's about ε·D, so the product is used
//!   where S > D (large sums of few dims);
//! * Hellinger of a small sum (S < ¼) is √S·√φ(S), φ(S) = −expm1(−S)/S,
//!   with √S from the scaled sum of squares of r_d = √D_d — or of the
//!   per-dim Hellinger distance H_d where D_d < ε (there H_d = √D_d to
//!   rounding, and H_d stays in range where D_d underflows).

use crate::error::{Error, Result};
use crate::math::{exp_split, expm1, scale_exp, Real, MEASURES};

/// Invocations (lanes) that share a row of [`WIDE_DIMS`] dims or more: KEEP
/// IN SYNC with `DIAG_LANES` of `shaders/diagonal.wgsl`.
pub(crate) const LANES: usize = 64;

/// Rows of this many dims or more are reduced by [`LANES`] lanes and a tree
/// (the GPU's `main_diagonal_wide`, a workgroup per row), shorter rows
/// sequentially (`main_diagonal`, an invocation per row). Measured on
/// llvmpipe, the tree's fixed cost per row makes a workgroup per row 9× slower
/// than an invocation per row at 64 dims and comparable from about 1000.
pub(crate) const WIDE_DIMS: usize = 256;

/// State slot of the Wasserstein sum of squares (slots 0–6 are the additive measures).
const W: usize = 7;
/// State slot of Hellinger's sum of squares r_d².
const HS: usize = 8;
/// Flag bit: Wasserstein-2 is infinite.
const FLAG_W_INF: u32 = 1 << 9;
/// Flag bit: a per-dim coefficient is 0 (so is the row's).
const FLAG_BC_ZERO: u32 = 1 << 10;
/// The floor of the coefficient product's exponent: far below any value that
/// survives the final scaling (≈ −1100), far above i32's end, so that rows of
/// millions of tiny coefficients cannot wrap it (kept by `add_coefficient` and
/// `merge`; the kernel clamps alike).
const PE_FLOOR: i32 = -(1 << 20);
/// Flag bit: an element is invalid (the row is NaN).
const FLAG_INVALID: u32 = 1 << 31;
/// Squares below 4^SQ_CUTOFF of the running scale are dropped.
const SQ_CUTOFF: i32 = -60;
/// The running scale before any nonzero W_d.
const NO_EXP: i32 = -100_000;

/// The running reduction of one row (or of one lane's dims).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowSum<T> {
    /// Slots 0–6: the additive measures; 7: Σ (W_d/2^we)²; 8: Σ (r_d/2^he)².
    h: [T; 9],
    l: [T; 9],
    we: i32,
    he: i32,
    /// Π BC_d = pm·2^pe, pm ∈ [1, 2).
    pm: T,
    pe: i32,
    /// Dims accumulated.
    n: u32,
    flags: u32,
    /// The per-dim measures accumulated (see [`accumulators`]): the GPU
    /// kernels guard the same accumulators by their `WRITE_*` overrides.
    mask: u16,
}

/// The per-dim measures a row needs for `metrics` (bit i = `Metric::ALL[i]`):
/// the requested ones, and the Bhattacharyya distance for the coefficient and
/// Hellinger.
pub(crate) fn accumulators(metrics: crate::pair::Metrics) -> u16 {
    let bits = metrics.bits();
    let db = if bits & (0b11 << 7) != 0 { 1 << 6 } else { 0 };
    bits | db
}

/// `a + b = s + e` exactly. On the CPU, Knuth's branch-free TwoSum (IEEE
/// arithmetic, which Rust never reassociates): the same `(s, e)` as the
/// kernels' bit-pattern Fast2Sum wherever that one is exact (both operands
/// and the sum in the normal range), and exact beyond it too.
#[inline(always)]
fn two_sum<T: Real>(a: T, b: T) -> (T, T) {
    let s = a + b;
    let bb = s - a;
    let e = (a - (s - bb)) + (b - bb);
    (s, e)
}

/// `x·4^d` for `d ≤ 0`; 0 below 4^SQ_CUTOFF.
#[inline(always)]
fn scale_sq<T: Real>(x: T, d: i32) -> T {
    if d >= SQ_CUTOFF {
        x * T::pow2(2 * d)
    } else {
        T::ZERO
    }
}

/// Add `w² ` (`w > 0` finite) to the sum of squares `(h + l)·4^e`, rescaling
/// it when `w` sets a new largest exponent.
#[inline(always)]
fn sq_add<T: Real>(h: &mut T, l: &mut T, e: &mut i32, w: T) {
    let (m, k) = w.frexp1();
    if k > *e {
        let d = *e - k;
        *h = scale_sq(*h, d);
        *l = scale_sq(*l, d);
        *e = k;
    }
    let x = k - *e;
    let tm = if x >= SQ_CUTOFF {
        m * T::pow2(x)
    } else {
        T::ZERO
    };
    let (s, err) = two_sum(*h, tm * tm);
    *h = s;
    *l = *l + err;
}

/// The union of two sums of squares `(h, l, e)`.
#[inline(always)]
fn sq_merge<T: Real>(a: (T, T, i32), b: (T, T, i32)) -> (T, T, i32) {
    let e = a.2.max(b.2);
    let ah = scale_sq(a.0, a.2 - e);
    let al = scale_sq(a.1, a.2 - e);
    let bh = scale_sq(b.0, b.2 - e);
    let bl = scale_sq(b.1, b.2 - e);
    let (s, err) = two_sum(ah, bh);
    (s, (al + bl) + err, e)
}

/// `√((h + l)·4^e)` as `(m, k)`, value `m·2^k`; `(0, 0)` for an empty sum.
#[inline(always)]
fn sq_root<T: Real>(h: T, l: T, e: i32) -> (T, i32) {
    let s = h + l;
    let has = s > T::ZERO;
    let (m, k) = (if has { s.sqrt() } else { T::ONE }).frexp1();
    if has {
        (m, k + e)
    } else {
        (T::ZERO, 0)
    }
}

/// `m ∈ [1, 4)` renormalised to `[1, 2)`: the exponent increment (exact).
#[inline(always)]
fn renorm<T: Real>(m: T) -> (T, i32) {
    if m >= T::TWO {
        (m * T::HALF, 1)
    } else {
        (m, 0)
    }
}

impl<T: Real> RowSum<T> {
    pub(crate) fn new(mask: u16) -> Self {
        RowSum {
            h: [T::ZERO; 9],
            l: [T::ZERO; 9],
            we: NO_EXP,
            he: NO_EXP,
            pm: T::ONE,
            pe: 0,
            n: 0,
            flags: 0,
            mask,
        }
    }

    fn add_term(&mut self, j: usize, v: T) {
        let (Some(h), Some(l)) = (self.h.get_mut(j), self.l.get_mut(j)) else {
            return;
        };
        if !v.is_finite() {
            self.flags |= 1 << j;
            return;
        }
        // Positive overflow by comparison (the sums are bounded below by about −104·D).
        if T::HALF * *h + T::HALF * v > T::HALF * T::MAX {
            self.flags |= 1 << j;
            return;
        }
        let (s, e) = two_sum(*h, v);
        *h = s;
        *l = *l + e;
    }

    fn add_w(&mut self, w: T) {
        if !w.is_finite() {
            self.flags |= FLAG_W_INF;
            return;
        }
        if w > T::ZERO {
            sq_add(&mut self.h[W], &mut self.l[W], &mut self.we, w);
        }
    }

    /// Hellinger's r_d: √D_d, or H_d where D_d < 2^−60 (√φ(D_d) = 1 to
    /// rounding there, in f32 and f64).
    fn add_hellinger(&mut self, db: T, hd: T) {
        let r = if db < T::pow2(-60) { hd } else { db.sqrt() };
        if r.is_finite() && r > T::ZERO {
            sq_add(&mut self.h[HS], &mut self.l[HS], &mut self.he, r);
        }
    }

    /// Multiply the running product by a per-dim coefficient (≤ 1).
    fn add_coefficient(&mut self, bc: T) {
        if bc > T::ZERO {
            let (m, k) = bc.frexp1();
            let (pm, inc) = renorm(self.pm * m);
            self.pm = pm;
            self.pe = (self.pe + k + inc).max(PE_FLOOR);
        } else {
            self.flags |= FLAG_BC_ZERO;
        }
    }

    /// Add one element: the measures of one dim, canonical order.
    /// Only the accumulated measures of `d` are read (the others may be
    /// anything); an invalid element is NaN in every measure.
    pub(crate) fn add(&mut self, d: &[T; MEASURES]) {
        let probe = d
            .get(self.mask.trailing_zeros() as usize)
            .copied()
            .unwrap_or(T::NAN);
        #[allow(clippy::eq_op)] // NaN test
        if probe != probe {
            self.flags |= FLAG_INVALID;
            return;
        }
        self.n = self.n.saturating_add(1);
        for (j, v) in d.iter().take(7).enumerate() {
            if self.mask >> j & 1 == 1 {
                self.add_term(j, *v);
            }
        }
        if self.mask >> 7 & 1 == 1 {
            self.add_coefficient(d[7]);
        }
        if self.mask >> 8 & 1 == 1 {
            self.add_hellinger(d[6], d[8]);
        }
        if self.mask >> 9 & 1 == 1 {
            self.add_w(d[9]);
        }
    }

    fn merge_term(&mut self, b: &Self, j: usize) {
        let (Some(ah), Some(al), Some(bh), Some(bl)) =
            (self.h.get(j), self.l.get(j), b.h.get(j), b.l.get(j))
        else {
            return;
        };
        if T::HALF * *ah + T::HALF * *bh > T::HALF * T::MAX {
            self.flags |= 1 << j;
            return;
        }
        let (s, e) = two_sum(*ah, *bh);
        let l = (*al + *bl) + e;
        if let (Some(h), Some(lo)) = (self.h.get_mut(j), self.l.get_mut(j)) {
            *h = s;
            *lo = l;
        }
    }

    /// The state of the union of two sets of dims (`self` first).
    pub(crate) fn combine(mut self, b: &Self) -> Self {
        self.flags |= b.flags;
        self.n = self.n.saturating_add(b.n);
        for j in 0..7 {
            if self.mask >> j & 1 == 1 {
                self.merge_term(b, j);
            }
        }
        if self.mask >> 7 & 1 == 1 {
            let (pm, inc) = renorm(self.pm * b.pm);
            self.pm = pm;
            self.pe = (self.pe + b.pe + inc).max(PE_FLOOR);
        }
        if self.mask >> 8 & 1 == 1 {
            (self.h[HS], self.l[HS], self.he) =
                sq_merge((self.h[HS], self.l[HS], self.he), (b.h[HS], b.l[HS], b.he));
        }
        if self.mask >> 9 & 1 == 1 {
            (self.h[W], self.l[W], self.we) =
                sq_merge((self.h[W], self.l[W], self.we), (b.h[W], b.l[W], b.we));
        }
        self
    }

    /// The ten measures of the joint distribution, canonical order.
    pub(crate) fn finish(&self) -> [T; MEASURES] {
        let mut v = [T::ZERO; MEASURES];
        if self.flags & FLAG_INVALID != 0 {
            return [T::NAN; MEASURES];
        }
        for (j, (o, (h, l))) in v
            .iter_mut()
            .zip(self.h.iter().zip(&self.l))
            .enumerate()
            .take(7)
        {
            *o = if self.flags & (1 << j) != 0 {
                T::INFINITY
            } else {
                *h + *l
            };
        }
        // D_B = h + l: exp(−h − l) ≈ exp(−h)·(1 − l), or Π BC_d where S > D.
        let db_inf = self.flags & (1 << 6) != 0;
        let (dh, dl) = (self.h[6], self.l[6]);
        let big = db_inf || dh > T::EXP_ARG_MAX;
        let (m, k) = exp_split(-(if big { T::EXP_ARG_MAX } else { dh }));
        let ex = m * (T::ONE - if big { T::ZERO } else { dl });
        let product = dh > T::from_i32(self.n as i32);
        let (cm, ck) = if product { (self.pm, self.pe) } else { (ex, k) };
        v[7] = if self.flags & FLAG_BC_ZERO != 0 {
            T::ZERO
        } else {
            scale_exp(cm, ck).0
        };
        // Hellinger: √(−expm1(−S)), or √S·√φ(S) for S < ¼.
        let dsum = if big { T::EXP_ARG_MAX } else { dh + dl };
        let small = !big && dh < T::HALF * T::HALF;
        let phi = if dsum < T::pow2(-60) {
            T::ONE
        } else {
            -expm1(-dsum) / dsum
        };
        let (rm, rk) = sq_root(self.h[HS], self.l[HS], self.he);
        let hs = scale_exp(rm * phi.sqrt(), rk).0;
        v[8] = if small { hs } else { (-expm1(-dsum)).sqrt() };
        // W = √(h + l)·2^we.
        let (wm, wk) = sq_root(self.h[W], self.l[W], self.we);
        let (ws, ws_inf) = scale_exp(wm, wk);
        v[9] = if self.flags & FLAG_W_INF != 0 || ws_inf {
            T::INFINITY
        } else {
            ws
        };
        v
    }
}

/// The measures of one row of `dims` elements (those of `mask`, see
/// [`accumulators`], and the ones derived from them), `elem(d)` the measures of
/// dim `d`: sequential below [`WIDE_DIMS`] dims, else [`LANES`] strided lanes and a
/// tree (strides 32, 16, …, 1) — the order of the GPU kernels.
pub(crate) fn reduce_row<T: Real>(
    dims: usize,
    mask: u16,
    elem: impl Fn(usize) -> [T; MEASURES],
) -> [T; MEASURES] {
    if dims < WIDE_DIMS {
        let mut st = RowSum::new(mask);
        for d in 0..dims {
            st.add(&elem(d));
        }
        return st.finish();
    }
    let mut lanes = [RowSum::<T>::new(mask); LANES];
    for (t, st) in lanes.iter_mut().enumerate() {
        for d in (t..dims).step_by(LANES) {
            st.add(&elem(d));
        }
    }
    let mut stride = LANES / 2;
    while stride > 0 {
        for i in 0..stride {
            if let (Some(a), Some(b)) = (lanes.get(i), lanes.get(i + stride)) {
                let c = a.combine(b);
                if let Some(a) = lanes.get_mut(i) {
                    *a = c;
                }
            }
        }
        stride /= 2;
    }
    lanes.first().map_or([T::NAN; MEASURES], RowSum::finish)
}

/// The number of rows of a diagonal input of `len` pairs in rows of `dims`,
/// with `k` values per row into an output of `out_len`: checks every length.
pub(crate) fn rows(len: usize, dims: usize, k: usize, out_len: usize) -> Result<usize> {
    if dims == 0 {
        return Err(Error::LengthMismatch {
            what: "diagonal dims (each row needs at least 1 dimension)",
            expected: 1,
            got: 0,
        });
    }
    if !len.is_multiple_of(dims) {
        return Err(Error::LengthMismatch {
            what: "diagonal input (a whole number of rows of dims pairs)",
            expected: (len / dims + 1).saturating_mul(dims) as u64,
            got: len as u64,
        });
    }
    let rows = len / dims;
    let expected = rows
        .checked_mul(k)
        .ok_or_else(|| Error::TooLarge(format!("{rows} rows × {k} values")))?;
    if out_len != expected {
        return Err(Error::LengthMismatch {
            what: "diagonal output (rows × metrics)",
            expected: expected as u64,
            got: out_len as u64,
        });
    }
    Ok(rows)
}

/// An invalid-input error at a flat index of a diagonal input, as
/// [`Error::InvalidElement`] naming the row and dim.
pub(crate) fn element_error(e: Error, dims: usize) -> Error {
    match e {
        Error::InvalidInput {
            index,
            field,
            value,
            reason,
        } => Error::InvalidElement {
            index,
            row: index / dims.max(1),
            dim: index % dims.max(1),
            field,
            value,
            reason,
        },
        other => other,
    }
}
