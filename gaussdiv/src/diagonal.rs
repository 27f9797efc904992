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
/// Flag bit: Wasserstein-2 is infinite.
const FLAG_W_INF: u32 = 1 << 9;
/// Flag bit: an element is invalid (the row is NaN).
const FLAG_INVALID: u32 = 1 << 31;
/// Squares below 4^SQ_CUTOFF of the running scale are dropped.
const SQ_CUTOFF: i32 = -60;
/// The running scale before any nonzero W_d.
const NO_EXP: i32 = -100_000;

/// The running reduction of one row (or of one lane's dims).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowSum<T> {
    h: [T; 8],
    l: [T; 8],
    we: i32,
    flags: u32,
    /// The per-dim measures accumulated (see [`accumulators`]): the GPU
    /// kernels guard the same accumulators by their `WRITE_*` overrides.
    mask: u16,
}

/// The per-dim measures a row needs for `metrics` (bit i = `Metric::ALL[i]`):
/// the requested sums, the Bhattacharyya distance for the coefficient and
/// Hellinger, and W² for Wasserstein-2.
pub(crate) fn accumulators(metrics: crate::pair::Metrics) -> u16 {
    let bits = metrics.bits();
    let db = if bits & (0b11 << 7) != 0 { 1 << 6 } else { 0 };
    (bits & 0b111_1111) | db | (bits & (1 << 9))
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

impl<T: Real> RowSum<T> {
    pub(crate) fn new(mask: u16) -> Self {
        RowSum {
            h: [T::ZERO; 8],
            l: [T::ZERO; 8],
            we: NO_EXP,
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
        if w <= T::ZERO {
            return;
        }
        let (m, k) = w.frexp1();
        if k > self.we {
            let d = self.we - k;
            self.h[W] = scale_sq(self.h[W], d);
            self.l[W] = scale_sq(self.l[W], d);
            self.we = k;
        }
        let e = k - self.we;
        let tm = if e >= SQ_CUTOFF {
            m * T::pow2(e)
        } else {
            T::ZERO
        };
        let (s, err) = two_sum(self.h[W], tm * tm);
        self.h[W] = s;
        self.l[W] = self.l[W] + err;
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
        for (j, v) in d.iter().take(7).enumerate() {
            if self.mask >> j & 1 == 1 {
                self.add_term(j, *v);
            }
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
        for j in 0..7 {
            if self.mask >> j & 1 == 1 {
                self.merge_term(b, j);
            }
        }
        let we = self.we.max(b.we);
        let ah = scale_sq(self.h[W], self.we - we);
        let al = scale_sq(self.l[W], self.we - we);
        let bh = scale_sq(b.h[W], b.we - we);
        let bl = scale_sq(b.l[W], b.we - we);
        let (s, e) = two_sum(ah, bh);
        self.h[W] = s;
        self.l[W] = (al + bl) + e;
        self.we = we;
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
        // D_B = h + l: exp(−h − l) ≈ exp(−h)·(1 − l).
        let db_inf = self.flags & (1 << 6) != 0;
        let (dh, dl) = (self.h[6], self.l[6]);
        let big = db_inf || dh > T::EXP_ARG_MAX;
        let (m, k) = exp_split(-(if big { T::EXP_ARG_MAX } else { dh }));
        let ex = m * (T::ONE - if big { T::ZERO } else { dl });
        v[7] = scale_exp(ex, k).0;
        let dsum = if big { T::EXP_ARG_MAX } else { dh + dl };
        v[8] = (-expm1(-dsum)).sqrt();
        // W = √(h + l)·2^we.
        let s = self.h[W] + self.l[W];
        let has_w = s > T::ZERO;
        let (rm, rk) = (if has_w { s.sqrt() } else { T::ONE }).frexp1();
        let (ws, ws_inf) = scale_exp(rm, rk + self.we);
        v[9] = if self.flags & FLAG_W_INF != 0 || (has_w && ws_inf) {
            T::INFINITY
        } else if has_w {
            ws
        } else {
            T::ZERO
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
