//! The lanes' arithmetic: one f64 per lane in an array (`V`), the
//! lane-by-lane helpers every step of `fast` is written with, the copy of
//! contiguous rows into lanes, and the logarithm of lane sums.

use super::super::MvnReal;
use crate::math::ln_mant_kf;
use crate::pair::Float;

/// One f64 value per lane.
pub(super) type V<const L: usize> = [f64; L];

#[inline(always)]
pub(super) fn splat<const L: usize>(x: f64) -> V<L> {
    [x; L]
}

#[inline(always)]
pub(super) fn map<const L: usize>(a: V<L>, f: impl Fn(f64) -> f64) -> V<L> {
    let mut r = a;
    for x in r.iter_mut() {
        *x = f(*x);
    }
    r
}

#[inline(always)]
pub(super) fn zip<const L: usize>(a: V<L>, b: V<L>, f: impl Fn(f64, f64) -> f64) -> V<L> {
    let mut r = a;
    for (x, y) in r.iter_mut().zip(b) {
        *x = f(*x, y);
    }
    r
}

/// `s − x·y` lane by lane.
#[inline(always)]
pub(super) fn sub_mul<const L: usize>(s: V<L>, x: V<L>, y: V<L>) -> V<L> {
    let mut r = s;
    for ((r, x), y) in r.iter_mut().zip(x).zip(y) {
        *r -= x * y;
    }
    r
}

/// `v[k]` (NaN lanes outside the slice).
#[inline(always)]
pub(super) fn get<const L: usize>(v: &[V<L>], k: usize) -> V<L> {
    v.get(k).copied().unwrap_or([f64::NAN; L])
}

/// `v[k] = x` (nothing outside the slice).
#[inline(always)]
pub(super) fn set<const L: usize>(v: &mut [V<L>], k: usize, x: V<L>) {
    if let Some(d) = v.get_mut(k) {
        *d = x;
    }
}

/// `dst[k][l] = src[l·w + k]` for k < w and every lane: `L` rows of
/// `w` values, transposed into lanes (NaN where `src` is short).
#[inline(always)]
pub(super) fn gather<const L: usize, T: Float + MvnReal>(dst: &mut [V<L>], src: &[T], w: usize) {
    for (k, v) in dst.iter_mut().enumerate().take(w) {
        for (l, x) in v.iter_mut().enumerate() {
            *x = src.get(l * w + k).map_or(f64::NAN, |t| t.to_f64());
        }
    }
}

/// ln x for a positive normal f64: exponent and mantissa in [1, 2) from
/// the bits, without a branch, then [`ln_mant_kf`] (the crate's one
/// logarithm, bit for bit `math::ln`).
#[inline(always)]
pub(super) fn ln_lane(x: f64) -> f64 {
    const MANT: u64 = (1 << 52) - 1;
    const ONE: u64 = 0x3ff0_0000_0000_0000;
    const TWO52: u64 = 0x4330_0000_0000_0000;
    let b = x.to_bits();
    let m = f64::from_bits((b & MANT) | ONE);
    let e = f64::from_bits((b >> 52) | TWO52) - (4_503_599_627_370_496.0 + 1023.0);
    ln_mant_kf(m, e)
}

/// Σ ln x_j over positive lanes, one logarithm per three factors: every
/// factor this path takes lies within 2^±277 (a diagonal entry of a
/// factor, or a ratio of two: f32 inputs give 2^−149 … 2^128, f64 inputs
/// are held to `F64_RANGE_EXP`), so a product of three stays inside
/// f64's normal range.
pub(super) struct LnSum<const L: usize> {
    sum: V<L>,
    prod: V<L>,
    n: usize,
}

impl<const L: usize> LnSum<L> {
    #[inline(always)]
    pub(super) fn new() -> LnSum<L> {
        LnSum {
            sum: splat(0.0),
            prod: splat(1.0),
            n: 0,
        }
    }

    #[inline(always)]
    pub(super) fn push(&mut self, x: V<L>) {
        self.prod = zip(self.prod, x, |p, x| p * x);
        self.n += 1;
        if self.n == 3 {
            self.sum = zip(self.sum, self.prod, |s, p| s + ln_lane(p));
            self.prod = splat(1.0);
            self.n = 0;
        }
    }

    #[inline(always)]
    pub(super) fn total(self) -> V<L> {
        if self.n == 0 {
            return self.sum;
        }
        zip(self.sum, self.prod, |s, p| s + ln_lane(p))
    }
}
