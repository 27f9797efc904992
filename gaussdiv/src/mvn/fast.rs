//! The CPU's lane-parallel path for full-covariance KL rows
//! (docs/ARCHITECTURE.md §9.4): [`LANES`] cells at a time, each step of the
//! far-apart formulation applied to all lanes at once, in f64 for f32 and
//! f64 inputs alike, so that the compiler vectorises across cells.
//!
//! It takes cells whose two sides are covariances or `scale_tril`s and
//! requests whose measures are among the cross-entropy, KL, reverse KL,
//! Jeffreys and the entropies. It computes
//! * Σ = L·Lᵀ by Cholesky (or L as given), M = L2⁻¹L1, z = L2⁻¹Δμ;
//! * KL = Σ_j V(m_jj) + ½Σ_{i>j} m_ij² + ½‖z‖², V(ρ) = ½(ρ² − 1) − ln ρ —
//!   the far-apart formula of `formulas.rs`, every term non-negative;
//!   reverse KL the same with the sides swapped;
//! * the entropies d/2(1 + ln 2π) + Σ ln L_jj; the cross-entropy H(p1) + KL.
//!
//! A lane is **accepted** only where that formula is accurate and its cell
//! is valid: every input finite, symmetric within half the tolerance of
//! [`SYM_TOL_ULPS`](super::SYM_TOL_ULPS) (so that nothing accepted here
//! could fail the scalar check), triangular with a positive diagonal for
//! `scale_tril`, every Cholesky pivot positive; the scale part of KL at
//! least [`FAR_KL`] (which implies ‖M·Mᵀ − I‖_F ≥ ½, the scalar path's
//! far-apart regime: every eigenvalue ν of M·Mᵀ − I contributes
//! ½(ν − ln(1 + ν)) ≤ ½ν² when |ν| < ½, so ‖ν‖ < ½ would give less than ⅛)
//! and of the reverse KL at least [`FAR_RKL`]; for f64 inputs every
//! diagonal entry and mean within 2^±[`F64_RANGE_EXP`] (the scalar path scales
//! by a common power of 4 first; these need none); every value finite.
//! Every other lane — close pairs, identical pairs (exact zeros), invalid
//! inputs with their error messages, precision matrices, extreme f64 scales
//! — is left to the scalar path of `mod.rs`, which the caller runs on it.
//!
//! In f64 the accepted lanes' terms are non-negative and at least ⅛ in
//! total, so rounding contributes a few units of 2⁻⁵³ relative beyond what
//! the factorisations carry (u·cond Σ, DESIGN's backward-stable bound); for
//! f32 inputs, which are exact in f64, the f32 results are the f64 values
//! rounded once.

use super::formulas::{Kind, Need, Side, SYM_TOL_ULPS};
use super::Plan;
use crate::math::{idx, ln_mant_kf, scale_part_near, Real};
use crate::pair::Float;
use crate::verify::Precision;

/// Cells per lane group.
pub(super) const LANES: usize = 8;

/// One f64 value per lane.
type V = [f64; LANES];

/// The smallest scale part of KL a lane is accepted with (see the module docs).
const FAR_KL: f64 = 0.125;

/// f64 inputs: diagonal entries and |means| within 2^±this (so that no
/// product or quotient of the formulation leaves f64's normal range).
const F64_RANGE_EXP: i32 = 200;

#[inline(always)]
fn splat(x: f64) -> V {
    [x; LANES]
}

#[inline(always)]
fn map(a: V, f: impl Fn(f64) -> f64) -> V {
    let mut r = a;
    for x in r.iter_mut() {
        *x = f(*x);
    }
    r
}

#[inline(always)]
fn zip(a: V, b: V, f: impl Fn(f64, f64) -> f64) -> V {
    let mut r = a;
    for (x, y) in r.iter_mut().zip(b) {
        *x = f(*x, y);
    }
    r
}

/// `s − x·y` lane by lane.
#[inline(always)]
fn sub_mul(s: V, x: V, y: V) -> V {
    let mut r = s;
    for ((r, x), y) in r.iter_mut().zip(x).zip(y) {
        *r -= x * y;
    }
    r
}

/// `v[k]` (NaN lanes outside the slice).
#[inline(always)]
fn get(v: &[V], k: usize) -> V {
    v.get(k).copied().unwrap_or([f64::NAN; LANES])
}

/// `v[k] = x` (nothing outside the slice).
#[inline(always)]
fn set(v: &mut [V], k: usize, x: V) {
    if let Some(d) = v.get_mut(k) {
        *d = x;
    }
}

/// ln x for a positive normal f64: exponent and mantissa in [1, 2) from
/// the bits, without a branch, then [`ln_mant_kf`] (the crate's one
/// logarithm, bit for bit `math::ln`).
#[inline(always)]
fn ln_lane(x: f64) -> f64 {
    const MANT: u64 = (1 << 52) - 1;
    const ONE: u64 = 0x3ff0_0000_0000_0000;
    const TWO52: u64 = 0x4330_0000_0000_0000;
    let b = x.to_bits();
    let m = f64::from_bits((b & MANT) | ONE);
    let e = f64::from_bits((b >> 52) | TWO52) - (4_503_599_627_370_496.0 + 1023.0);
    ln_mant_kf(m, e)
}

/// Whether the lane path takes cells of these forms (then for every
/// request: the measures it computes come from it wherever it accepts a
/// lane, so that a value does not depend on which others were asked for).
pub(super) fn applies(k1: Kind, k2: Kind) -> bool {
    let form = |k: Kind| matches!(k, Kind::Cov | Kind::Tril);
    form(k1) && form(k2)
}

/// Whether measure `j` (canonical index) is computed by the lane path.
pub(super) fn computes(j: usize) -> bool {
    [
        idx::CROSS_ENTROPY,
        idx::KL,
        idx::REVERSE_KL,
        idx::JEFFREYS,
        idx::ENTROPY,
        idx::ENTROPY_Q,
    ]
    .contains(&j)
}

/// One side of a lane group.
struct SideLanes {
    /// The input's lower triangle (Σ, or L for a `scale_tril`).
    a: Vec<V>,
    /// The lower factor L (Σ = L·Lᵀ) and its reciprocal diagonal.
    l: Vec<V>,
    inv: Vec<V>,
    /// Σ_j ln L_jj.
    ln_det_half: V,
}

/// Scratch space of a task, reused from group to group.
pub(super) struct Lanes {
    d: usize,
    need: Need,
    f64_inputs: bool,
    /// Half the symmetry tolerance, squared (compared with squares).
    sym_tol2: f64,
    sides: [SideLanes; 2],
    mu1: Vec<V>,
    dmu: Vec<V>,
    m: Vec<V>,
    z: Vec<V>,
    /// The close-together formulation's N (then H) and its scratch.
    n: Vec<V>,
    y: Vec<V>,
    ok: [bool; LANES],
}

impl Lanes {
    pub(super) fn new<T: Float>(d: usize, need: Need) -> Lanes {
        let side = || SideLanes {
            a: vec![splat(0.0); d * d],
            l: vec![splat(0.0); d * d],
            inv: vec![splat(0.0); d],
            ln_det_half: splat(0.0),
        };
        let eps = match T::PRECISION {
            Precision::F32 => f64::from(f32::EPSILON) / 2.0,
            Precision::F64 => f64::EPSILON / 2.0,
        };
        let half_tol = 0.5 * SYM_TOL_ULPS * d as f64 * eps;
        Lanes {
            d,
            need,
            f64_inputs: T::PRECISION == Precision::F64,
            sym_tol2: half_tol * half_tol,
            sides: [side(), side()],
            mu1: vec![splat(0.0); d],
            dmu: vec![splat(0.0); d],
            m: vec![splat(0.0); d * d],
            z: vec![splat(0.0); d],
            n: vec![splat(0.0); d * d],
            y: vec![splat(0.0); d * d],
            ok: [false; LANES],
        }
    }

    /// Loads lane `l` from one side (`s` 0 or 1); false if the fast checks fail.
    #[inline(always)]
    fn load<T: Float + super::MvnReal>(&mut self, s: usize, l: usize, side: &Side<'_, T>) -> bool {
        let d = self.d;
        if side.mu.len() != d || side.m.len() != d * d {
            return false;
        }
        let lim = 2f64.powi(F64_RANGE_EXP);
        let f64_inputs = self.f64_inputs;
        let in_range = move |x: f64| !f64_inputs || x.abs() <= lim;
        let diag_in_range = move |x: f64| !f64_inputs || (x <= lim && x >= 1.0 / lim);
        let sym_tol2 = self.sym_tol2;
        let tril = side.kind == Kind::Tril;
        let Some(dst) = self.sides.get_mut(s) else {
            return false;
        };
        let mut good = true;
        for i in 0..d {
            let row = side.m.get(i * d..(i + 1) * d).unwrap_or_default();
            let aii = row.get(i).map_or(f64::NAN, |v| v.to_f64());
            good &= aii > 0.0 && aii.is_finite() && diag_in_range(aii);
            for (j, v) in row.iter().enumerate() {
                let x = v.to_f64();
                if j <= i {
                    good &= x.is_finite() && in_range(x);
                    if let Some(lane) = dst.a.get_mut(i * d + j).and_then(|a| a.get_mut(l)) {
                        *lane = x;
                    }
                } else if tril {
                    good &= x == 0.0;
                } else {
                    // Σ_ij (upper) against Σ_ji (lower), both finite.
                    let y = side.m.get(j * d + i).map_or(f64::NAN, |v| v.to_f64());
                    let ajj = side.m.get(j * d + j).map_or(f64::NAN, |v| v.to_f64());
                    let diff = x - y;
                    good &= x.is_finite() && diff * diff <= sym_tol2 * (aii * ajj).abs();
                }
            }
        }
        for (i, v) in side.mu.iter().enumerate() {
            let x = v.to_f64();
            good &= x.is_finite() && in_range(x);
            let target = if s == 0 { &mut self.mu1 } else { &mut self.dmu };
            if let Some(lane) = target.get_mut(i).and_then(|a| a.get_mut(l)) {
                *lane = x;
            }
        }
        good
    }

    /// Fills lane `l` with the identity pair (an unused lane).
    #[inline(always)]
    fn fill_unused(&mut self, l: usize) {
        let d = self.d;
        for side in &mut self.sides {
            for (k, a) in side.a.iter_mut().enumerate() {
                if let Some(x) = a.get_mut(l) {
                    *x = if k % (d + 1) == 0 { 1.0 } else { 0.0 };
                }
            }
        }
        for v in self.mu1.iter_mut().chain(self.dmu.iter_mut()) {
            if let Some(x) = v.get_mut(l) {
                *x = 0.0;
            }
        }
    }

    /// Cells `c0 .. c0 + n` (n ≤ LANES) of `plan` into `rows` (k values
    /// each, the measures `sel` in canonical order); returns which lanes
    /// were accepted (the rows of the others are left untouched).
    pub(super) fn run<T: Float + super::MvnReal>(
        &mut self,
        plan: &Plan<'_, T>,
        c0: usize,
        n: usize,
        sel: &[usize],
        rows: &mut [T],
    ) -> [bool; LANES] {
        #[cfg(target_arch = "x86_64")]
        {
            match crate::cpu::simd_level() {
                // SAFETY: the features these functions are compiled for were detected.
                "avx512" => return unsafe { simd::avx512(self, plan, c0, n, sel, rows) },
                "avx2" => return unsafe { simd::avx2(self, plan, c0, n, sel, rows) },
                _ => {}
            }
        }
        self.run_body(plan, c0, n, sel, rows)
    }

    /// [`Lanes::run`]'s body, inlined into each instruction set's version.
    #[inline(always)]
    fn run_body<T: Float + super::MvnReal>(
        &mut self,
        plan: &Plan<'_, T>,
        c0: usize,
        n: usize,
        sel: &[usize],
        rows: &mut [T],
    ) -> [bool; LANES] {
        let k = sel.len();
        if k == 0 {
            return [false; LANES];
        }
        let kinds = [plan.p.cov.kind(), plan.q.cov.kind()];
        for l in 0..LANES {
            let good = if l < n {
                let (s1, s2) = plan.sides(c0 + l);
                let a = self.load(0, l, &s1);
                let b = self.load(1, l, &s2);
                a && b
            } else {
                false
            };
            if !good {
                self.fill_unused(l);
            }
            if let Some(o) = self.ok.get_mut(l) {
                *o = good;
            }
        }
        let v = self.evaluate(kinds);
        let mut accepted = [false; LANES];
        for (l, (acc, row)) in accepted
            .iter_mut()
            .zip(rows.chunks_exact_mut(k))
            .enumerate()
        {
            let lane = |x: &V| x.get(l).copied().unwrap_or(f64::NAN);
            let ok = self.ok.get(l).copied().unwrap_or(false);
            if !ok || l >= n {
                continue;
            }
            // Only the measures computed here (the others are the scalar path's).
            for (dst, &j) in row.iter_mut().zip(sel) {
                if let Some((_, x)) = v.iter().find(|(m, _)| *m == j) {
                    *dst = T::from_f64(lane(x));
                }
            }
            *acc = true;
        }
        accepted
    }

    /// The lower factor of side `s` (Cholesky, or the given factor), its
    /// reciprocal diagonal and Σ ln L_jj; lanes with a non-positive pivot
    /// are marked bad.
    #[inline(always)]
    fn factor(&mut self, s: usize, kind: Kind) {
        let d = self.d;
        let mut bad = [false; LANES];
        let Some(side) = self.sides.get_mut(s) else {
            return;
        };
        if kind == Kind::Tril {
            side.l.copy_from_slice(&side.a);
        }
        let mut ln_sum = splat(0.0);
        for j in 0..d {
            if kind == Kind::Cov {
                for i in j..d {
                    let mut acc = get(&side.a, i * d + j);
                    for kk in 0..j {
                        acc = sub_mul(acc, get(&side.l, i * d + kk), get(&side.l, j * d + kk));
                    }
                    if i == j {
                        for (b, x) in bad.iter_mut().zip(acc.iter_mut()) {
                            *b |= !(*x > 0.0);
                            if !(*x > 0.0) {
                                *x = 1.0;
                            }
                        }
                        let ljj = map(acc, f64::sqrt);
                        set(&mut side.l, i * d + j, ljj);
                        set(&mut side.inv, j, map(ljj, |x| 1.0 / x));
                    } else {
                        let r = zip(acc, get(&side.inv, j), |x, y| x * y);
                        set(&mut side.l, i * d + j, r);
                    }
                }
            } else {
                set(&mut side.inv, j, map(get(&side.l, j * d + j), |x| 1.0 / x));
            }
            ln_sum = zip(ln_sum, get(&side.l, j * d + j), |s, x| s + ln_lane(x));
        }
        side.ln_det_half = ln_sum;
        for (o, b) in self.ok.iter_mut().zip(bad) {
            *o &= !b;
        }
    }

    /// The scale part of KL(a‖b) (M = Lb⁻¹La into `self.m`) and ‖Lb⁻¹Δμ‖².
    #[inline(always)]
    fn kl_parts(&mut self, a: usize, b: usize) -> (V, V) {
        let d = self.d;
        let (Some(sa), Some(sb)) = (self.sides.get(a), self.sides.get(b)) else {
            return (splat(f64::NAN), splat(f64::NAN));
        };
        let mut off = splat(0.0);
        let mut diag = splat(0.0);
        for c in 0..d {
            for i in c..d {
                let mut acc = get(&sa.l, i * d + c);
                for kk in c..i {
                    acc = sub_mul(acc, get(&sb.l, i * d + kk), get(&self.m, kk * d + c));
                }
                let mic = zip(acc, get(&sb.inv, i), |x, y| x * y);
                set(&mut self.m, i * d + c, mic);
                if i == c {
                    // V(ρ) = ½(ρ² − 1) − ln ρ.
                    diag = zip(diag, mic, |s, r| s + (0.5 * (r * r - 1.0) - ln_lane(r)));
                } else {
                    off = zip(off, mic, |s, x| s + x * x);
                }
            }
        }
        let mut q = splat(0.0);
        for i in 0..d {
            let mut acc = get(&self.dmu, i);
            for kk in 0..i {
                acc = sub_mul(acc, get(&sb.l, i * d + kk), get(&self.z, kk));
            }
            let zi = zip(acc, get(&sb.inv, i), |x, y| x * y);
            set(&mut self.z, i, zi);
            q = zip(q, zi, |s, x| s + x * x);
        }
        (zip(diag, off, |x, y| x + 0.5 * y), q)
    }

    /// (Σ_s)_ij, i ≥ j, of side `s`: the input, or (L·Lᵀ)_ij for a factor.
    #[inline(always)]
    fn sigma(&self, s: usize, kind: Kind, i: usize, j: usize) -> V {
        let d = self.d;
        let Some(side) = self.sides.get(s) else {
            return splat(f64::NAN);
        };
        if kind == Kind::Cov {
            return get(&side.a, i * d + j);
        }
        let mut acc = splat(0.0);
        for k in 0..=j {
            acc = sub_mul(acc, get(&side.l, i * d + k), get(&side.l, j * d + k));
        }
        map(acc, |x| -x)
    }

    /// The close-together formulation, for f32 inputs (exact in f64):
    /// N = L2⁻¹(Σ1 − Σ2)L2⁻ᵀ, I + N = (I + E)(I + E)ᵀ factored directly
    /// in E, KL = Σ_j φ(e_jj) + ½Σ_{i>j} e_ij², and the reverse KL the same
    /// of G = (I + E)⁻¹ − I (formulas.rs). Returns ‖N‖²_F, the two scale
    /// parts and whether the factorisation of I + N succeeded.
    #[inline(always)]
    fn near(&mut self, kinds: [Kind; 2]) -> (V, V, V, [bool; LANES]) {
        let d = self.d;
        // ΔΣ (symmetric, full) into y.
        for i in 0..d {
            for j in 0..=i {
                let v = zip(
                    self.sigma(0, kinds[0], i, j),
                    self.sigma(1, kinds[1], i, j),
                    |a, b| a - b,
                );
                set(&mut self.y, i * d + j, v);
                set(&mut self.y, j * d + i, v);
            }
        }
        let Some(s2) = self.sides.get(1) else {
            return (
                splat(f64::NAN),
                splat(f64::NAN),
                splat(f64::NAN),
                [false; LANES],
            );
        };
        // Y = L2⁻¹ΔΣ in place, then N = L2⁻¹Yᵀ.
        for c in 0..d {
            for i in 0..d {
                let mut acc = get(&self.y, i * d + c);
                for k in 0..i {
                    acc = sub_mul(acc, get(&s2.l, i * d + k), get(&self.y, k * d + c));
                }
                set(
                    &mut self.y,
                    i * d + c,
                    zip(acc, get(&s2.inv, i), |x, y| x * y),
                );
            }
        }
        let mut nn = splat(0.0);
        for c in 0..d {
            for i in 0..d {
                let mut acc = get(&self.y, c * d + i);
                for k in 0..i {
                    acc = sub_mul(acc, get(&s2.l, i * d + k), get(&self.n, k * d + c));
                }
                let v = zip(acc, get(&s2.inv, i), |x, y| x * y);
                set(&mut self.n, i * d + c, v);
                nn = zip(nn, v, |s, x| s + x * x);
            }
        }
        // E in place of N's lower triangle.
        let mut good = [true; LANES];
        let phi = |e: f64| scale_part_near(e / (2.0 + e));
        let (mut kl, mut off) = (splat(0.0), splat(0.0));
        for j in 0..d {
            let mut s = get(&self.n, j * d + j);
            for k in 0..j {
                let e = get(&self.n, j * d + k);
                s = sub_mul(s, e, e);
            }
            for (g, x) in good.iter_mut().zip(s.iter_mut()) {
                *g &= 1.0 + *x > 0.0;
                if !(1.0 + *x > 0.0) {
                    *x = 0.0;
                }
            }
            let ejj = map(s, |s| s / (1.0 + (1.0 + s).sqrt()));
            set(&mut self.n, j * d + j, ejj);
            kl = zip(kl, ejj, |a, e| a + phi(e));
            for i in j + 1..d {
                let mut acc = get(&self.n, i * d + j);
                for k in 0..j {
                    acc = sub_mul(acc, get(&self.n, i * d + k), get(&self.n, j * d + k));
                }
                let eij = zip(acc, ejj, |x, e| x / (1.0 + e));
                set(&mut self.n, i * d + j, eij);
                off = zip(off, eij, |a, x| a + x * x);
            }
        }
        let kl = zip(kl, off, |a, b| a + 0.5 * b);
        if !self.need.rkl {
            return (nn, kl, splat(f64::NAN), good);
        }
        // G = (I + E)⁻¹ − I (lower) into y: g_jj = −e_jj/(1 + e_jj),
        // g_ij = −(e_ij + Σ_{j≤k<i} e_ik g_kj)/(1 + e_ii).
        let (mut rkl, mut off) = (splat(0.0), splat(0.0));
        for j in 0..d {
            let gjj = map(get(&self.n, j * d + j), |e| -e / (1.0 + e));
            set(&mut self.y, j * d + j, gjj);
            rkl = zip(rkl, gjj, |a, g| a + phi(g));
            for i in j + 1..d {
                let mut acc = map(get(&self.n, i * d + j), |x| -x);
                for k in j..i {
                    acc = sub_mul(acc, get(&self.n, i * d + k), get(&self.y, k * d + j));
                }
                let gij = zip(acc, get(&self.n, i * d + i), |x, e| x / (1.0 + e));
                set(&mut self.y, i * d + j, gij);
                off = zip(off, gij, |a, x| a + x * x);
            }
        }
        (nn, kl, zip(rkl, off, |a, b| a + 0.5 * b), good)
    }

    /// Every lane's values, keyed by measure index; marks lanes not accepted.
    #[inline(always)]
    fn evaluate(&mut self, kinds: [Kind; 2]) -> Vec<(usize, V)> {
        let d = self.d;
        // Δμ = μ1 − μ2 (μ2 was loaded into dmu).
        for i in 0..d {
            let v = zip(get(&self.mu1, i), get(&self.dmu, i), |a, b| a - b);
            set(&mut self.dmu, i, v);
        }
        self.factor(0, kinds[0]);
        self.factor(1, kinds[1]);
        let h0 = d as f64 * <f64 as Real>::HALF_LN_2PI_E;
        let [h1, h2] = [0, 1].map(|s| {
            let ln = self.sides.get(s).map_or(splat(f64::NAN), |x| x.ln_det_half);
            map(ln, |x| h0 + x)
        });
        // The far-apart formula everywhere; its KL decides the regime.
        let (mut kl_scale, q2) = self.kl_parts(0, 1);
        let (mut rkl_scale, q1) = if self.need.rkl {
            self.kl_parts(1, 0)
        } else {
            (splat(f64::NAN), splat(f64::NAN))
        };
        let mut maybe_near = [false; LANES];
        for ((m, &o), &x) in maybe_near.iter_mut().zip(&self.ok).zip(&kl_scale) {
            *m = o && !(x >= FAR_KL);
        }
        if self.f64_inputs {
            // Close pairs in f64 need the scalar path's refined formulation.
            for (o, m) in self.ok.iter_mut().zip(maybe_near) {
                *o &= !m;
            }
        } else if maybe_near.contains(&true) {
            let (nn, kl_near, rkl_near, good) = self.near(kinds);
            for l in 0..LANES {
                let lane = |v: &V| v.get(l).copied().unwrap_or(f64::NAN);
                let near = maybe_near.get(l) == Some(&true) && lane(&nn) < 0.25;
                if !near {
                    continue;
                }
                if let (Some(o), Some(k), Some(r)) = (
                    self.ok.get_mut(l),
                    kl_scale.get_mut(l),
                    rkl_scale.get_mut(l),
                ) {
                    *o &= good.get(l) == Some(&true);
                    *k = lane(&kl_near);
                    *r = lane(&rkl_near);
                }
            }
        }
        let mut out = vec![(idx::ENTROPY, h1), (idx::ENTROPY_Q, h2)];
        let kl = zip(kl_scale, q2, |s, q| s + 0.5 * q);
        out.push((idx::KL, kl));
        out.push((idx::CROSS_ENTROPY, zip(h1, kl, |h, k| h + k)));
        if self.need.rkl {
            let rkl = zip(rkl_scale, q1, |s, q| s + 0.5 * q);
            out.push((idx::REVERSE_KL, rkl));
            out.push((idx::JEFFREYS, zip(kl, rkl, |a, b| a + b)));
        }
        for (_, v) in &out {
            for (o, x) in self.ok.iter_mut().zip(v) {
                *o &= x.is_finite();
            }
        }
        out
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::{Lanes, Plan, LANES};
    use crate::pair::Float;

    /// # Safety
    /// The CPU must support AVX-512 F/VL/DQ/BW/CD (checked by the caller).
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx512cd,avx2,fma")]
    pub unsafe fn avx512<T: Float + super::super::MvnReal>(
        lanes: &mut Lanes,
        plan: &Plan<'_, T>,
        c0: usize,
        n: usize,
        sel: &[usize],
        rows: &mut [T],
    ) -> [bool; LANES] {
        lanes.run_body(plan, c0, n, sel, rows)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA (checked by the caller).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2<T: Float + super::super::MvnReal>(
        lanes: &mut Lanes,
        plan: &Plan<'_, T>,
        c0: usize,
        n: usize,
        sel: &[usize],
        rows: &mut [T],
    ) -> [bool; LANES] {
        lanes.run_body(plan, c0, n, sel, rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_lane_is_the_crate_logarithm() {
        for &x in &[
            1e-300,
            3.7e-23,
            0.5,
            1.0,
            1.4142135623730951,
            2.0,
            3.0,
            1e19,
            1e300,
        ] {
            assert_eq!(
                ln_lane(x).to_bits(),
                crate::math::ln(x).to_bits(),
                "x = {x}"
            );
        }
    }
}
