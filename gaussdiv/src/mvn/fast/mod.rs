//! The CPU's lane-parallel path for full-covariance KL rows
//! (docs/ARCHITECTURE.md §9, "Speed: the CPU lanes"): [`LANES`] cells at a
//! time, each step applied to all lanes at once, in f64 for f32 and f64
//! inputs alike, so that the compiler vectorises across cells.
//!
//! It takes cells whose two sides are covariances or `scale_tril`s and
//! computes the cross-entropy, KL, reverse KL, Jeffreys and the entropies
//! ([`computes`]); the caller takes the other measures from the scalar path.
//! * Σ = L·Lᵀ by Cholesky (or L as given), M = L2⁻¹L1, z = L2⁻¹Δμ;
//! * far apart: KL = Σ_j V(m_jj) + ½Σ_{i>j} m_ij² + ½‖z‖², V(ρ) = ½(ρ² − 1)
//!   − ln ρ — the far-apart formula of `formulas.rs`, every term
//!   non-negative; reverse KL the same with the sides swapped;
//! * close together (f32 inputs only, [`Lanes::run`] with `near`): N =
//!   L2⁻¹(Σ1 − Σ2)L2⁻ᵀ from the difference (exact for f32 inputs in f64),
//!   I + N = (I + E)(I + E)ᵀ solved for E directly, KL = Σ φ(e_jj) +
//!   ½Σ_{i>j} e_ij², and the reverse KL from G = (I + E)⁻¹ − I;
//! * the entropies d/2(1 + ln 2π) + Σ ln L_jj; the cross-entropy H(p1) + KL.
//!
//! A lane is **accepted** only where this is accurate and its cell is
//! valid: every input finite, symmetric within half the tolerance of
//! [`SYM_TOL_ULPS`](super::SYM_TOL_ULPS) (so that nothing accepted here
//! could fail the scalar check), triangular with a positive diagonal for
//! `scale_tril`, every Cholesky pivot positive, every value finite; for f64
//! inputs every entry within 2^±[`F64_RANGE_EXP`] (the scalar path scales
//! by a common power of 4 first; these need none) and KL's scale part at
//! least [`FAR_KL`]. That implies ‖M·Mᵀ − I‖_F ≥ ½, the scalar path's
//! far-apart regime (every eigenvalue ν of M·Mᵀ − I contributes
//! ½(ν − ln(1 + ν)) ≤ ½ν² when |ν| < ½, so ‖ν‖ < ½ would give less than
//! ⅛), and then the reverse KL's scale part is at least about 0.08 (its
//! ratio to KL's is smallest for a single eigenvalue above 1). The terms
//! are then non-negative and at least ⅛ in total, so rounding adds a few
//! units of 2⁻⁵³ relative to what the factorisations carry (about u·cond Σ).
//! For f32 inputs, f64 leaves 29 bits to spare: far pairs below ⅛ keep the
//! far formula while ‖N‖_F ≥ ½, close ones take the close formulation, and
//! the f32 results are f64 values rounded once.
//!
//! Every other lane — close f64 pairs, invalid inputs with their error
//! messages, extreme f64 scales — is left to the scalar path of `mod.rs`,
//! which the caller runs on it; so are precision matrices.

mod near;
mod ops;

use super::formulas::{Kind, Side, SYM_TOL_ULPS};
use super::Plan;
use crate::math::{idx, Real};
use crate::pair::Float;
use crate::verify::Precision;
use ops::{gather, get, map, set, splat, sub_mul, zip, LnSum, V};

/// Cells per lane group.
pub(super) const LANES: usize = 16;

/// The smallest scale part of KL a lane is accepted with (see the module docs).
const FAR_KL: f64 = 0.125;

/// f64 inputs: diagonal entries and |means| within 2^±this (so that no
/// product or quotient of the formulation leaves f64's normal range).
const F64_RANGE_EXP: i32 = 200;

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
struct SideLanes<const L: usize> {
    /// The input's lower triangle (Σ, or L for a `scale_tril`).
    a: Vec<V<L>>,
    /// The lower factor L (Σ = L·Lᵀ) and its reciprocal diagonal.
    l: Vec<V<L>>,
    inv: Vec<V<L>>,
    /// Σ_j ln L_jj.
    ln_det_half: V<L>,
}

/// Scratch space of a task: one group of [`LANES`] lanes for d ≤ 4 (the
/// dimensions compiled with d fixed, whose values stay in registers), two
/// groups of half that above (a group's matrices then outgrow the L1 cache).
pub(super) struct Lanes {
    group: Groups,
    /// Lanes left for the close-together pass (see [`Lanes::run`]).
    deferred: [bool; LANES],
}

enum Groups {
    Wide(Group<LANES>),
    Narrow(Group<{ LANES / 2 }>),
}

impl Lanes {
    pub(super) fn new<T: Float + super::MvnReal>(d: usize, rkl: bool) -> Lanes {
        Lanes {
            group: if d <= 4 {
                Groups::Wide(Group::new::<T>(d, rkl))
            } else {
                Groups::Narrow(Group::new::<T>(d, rkl))
            },
            deferred: [false; LANES],
        }
    }

    /// The lanes of the last [`Lanes::run`] left for a `near` run.
    pub(super) fn deferred(&self) -> [bool; LANES] {
        self.deferred
    }

    /// The cells `cells` (at most [`LANES`]) of `plan` into `rows` (k values
    /// each, the measures `sel` in canonical order; only the measures this
    /// path computes are written); returns which lanes were accepted (the
    /// rows of the others are left untouched). Without `near`, close pairs
    /// of f32 inputs are not evaluated but marked [`Lanes::deferred`]: the
    /// caller packs them into groups of their own and runs those with `near`.
    pub(super) fn run<T: Float + super::MvnReal>(
        &mut self,
        plan: &Plan<'_, T>,
        cells: &[usize],
        near: bool,
        sel: &[usize],
        rows: &mut [T],
    ) -> [bool; LANES] {
        let mut done = [false; LANES];
        self.deferred = [false; LANES];
        match &mut self.group {
            Groups::Wide(g) => {
                done = g.run(plan, cells, near, sel, rows);
                self.deferred = g.deferred();
            }
            Groups::Narrow(g) => {
                const H: usize = LANES / 2;
                let k = sel.len();
                for h in 0..2 {
                    let part = cells.get(h * H..).unwrap_or_default();
                    let part = part.get(..H).unwrap_or(part);
                    if part.is_empty() {
                        break;
                    }
                    let r = rows.get_mut(h * H * k..).unwrap_or_default();
                    let d = g.run(plan, part, near, sel, r);
                    let later = g.deferred();
                    let lanes = done.iter_mut().zip(self.deferred.iter_mut()).skip(h * H);
                    for ((o, l), (d, later)) in lanes.zip(d.into_iter().zip(later)) {
                        (*o, *l) = (d, later);
                    }
                }
            }
        }
        done
    }
}

/// The scratch space of `L` lanes, reused from group to group.
pub(super) struct Group<const L: usize> {
    d: usize,
    /// Whether the reverse KL (and Jeffreys) is asked.
    rkl: bool,
    f64_inputs: bool,
    /// Half the symmetry tolerance, squared (compared with squares).
    sym_tol2: f64,
    /// [`Group::check`]'s bounds: |entry| ≤ `lim`; a covariance's diagonal
    /// in [1/`lim`, `lim`], a factor's in [1/`tril_lim`, `tril_lim`].
    lim: f64,
    tril_lim: f64,
    /// Their reciprocals.
    lim_inv: f64,
    tril_lim_inv: f64,
    sides: [SideLanes<L>; 2],
    mu1: Vec<V<L>>,
    dmu: Vec<V<L>>,
    m: Vec<V<L>>,
    z: Vec<V<L>>,
    /// The close-together formulation's N (then H) and its scratch.
    n: Vec<V<L>>,
    y: Vec<V<L>>,
    ok: [bool; L],
    /// Lanes left for the close-together pass (see [`Lanes::run`]).
    deferred: [bool; L],
}

impl<const L: usize> Group<L> {
    fn new<T: Float + super::MvnReal>(d: usize, rkl: bool) -> Group<L> {
        let side = || SideLanes {
            a: vec![splat(0.0); d * d],
            l: vec![splat(0.0); d * d],
            inv: vec![splat(0.0); d],
            ln_det_half: splat(0.0),
        };
        // Half the scalar check's tolerance (formulas::check), so that
        // nothing accepted here could fail it.
        let half_tol = 0.5 * SYM_TOL_ULPS * d as f64 * T::EPS.to_f64();
        let lim = if T::PRECISION == Precision::F64 {
            2f64.powi(F64_RANGE_EXP)
        } else {
            f64::MAX
        };
        Group {
            d,
            rkl,
            f64_inputs: T::PRECISION == Precision::F64,
            sym_tol2: half_tol * half_tol,
            lim,
            tril_lim: lim.sqrt(),
            lim_inv: 1.0 / lim,
            tril_lim_inv: 1.0 / lim.sqrt(),
            sides: [side(), side()],
            mu1: vec![splat(0.0); d],
            dmu: vec![splat(0.0); d],
            m: vec![splat(0.0); d * d],
            z: vec![splat(0.0); d],
            n: vec![splat(0.0); d * d],
            y: vec![splat(0.0); d * d],
            ok: [false; L],
            deferred: [false; L],
        }
    }

    /// The lanes of the last [`Group::run`] left for a `near` run.
    fn deferred(&self) -> [bool; L] {
        self.deferred
    }

    /// d: the compile-time `D` of a specialised instance (1–4, loops
    /// unrolled), else the run-time one (`D` = 0).
    #[inline(always)]
    fn dims<const D: usize>(&self) -> usize {
        if D == 0 {
            self.d
        } else {
            D
        }
    }

    /// Copies lane `l` of one side (`s` 0 or 1): its whole matrix and its
    /// mean (false if a slice has the wrong length); [`Group::check`]
    /// validates all lanes at once.
    #[inline(always)]
    fn load<const D: usize, T: Float + super::MvnReal>(
        &mut self,
        s: usize,
        l: usize,
        side: &Side<'_, T>,
    ) -> bool {
        let d = self.dims::<D>();
        if side.mu.len() != d || side.m.len() != d * d {
            return false;
        }
        let Some(dst) = self.sides.get_mut(s) else {
            return false;
        };
        for (a, v) in dst.a.iter_mut().zip(side.m) {
            if let Some(x) = a.get_mut(l) {
                *x = v.to_f64();
            }
        }
        let target = if s == 0 { &mut self.mu1 } else { &mut self.dmu };
        for (a, v) in target.iter_mut().zip(side.mu) {
            if let Some(x) = a.get_mut(l) {
                *x = v.to_f64();
            }
        }
        true
    }

    /// Marks the lanes whose side `s` fails the fast checks: every entry
    /// finite; a covariance symmetric within half the scalar tolerance, a
    /// factor zero above a positive diagonal; for f64 inputs every entry
    /// within 2^±[`F64_RANGE_EXP`] and the diagonal within 2^±200 (2^±100
    /// for a factor).
    #[inline(always)]
    fn check<const D: usize>(&mut self, s: usize, kind: Kind) {
        let d = self.dims::<D>();
        let mut good = [true; L];
        let Some(side) = self.sides.get(s) else {
            return;
        };
        let mu = if s == 0 { &self.mu1 } else { &self.dmu };
        let lim = self.lim;
        let (dlim, dlim_inv) = if kind == Kind::Tril {
            (self.tril_lim, self.tril_lim_inv)
        } else {
            (lim, self.lim_inv)
        };
        let tol2 = self.sym_tol2;
        // Lane-wise conditions as generic closures (vectorised, no calls).
        #[inline(always)]
        fn and<const L: usize>(good: &mut [bool; L], v: V<L>, f: impl Fn(f64) -> bool) {
            for (g, x) in good.iter_mut().zip(v) {
                *g &= f(x);
            }
        }
        for v in side.a.iter().chain(mu) {
            and(&mut good, *v, |x| x.abs() <= lim);
        }
        for i in 0..d {
            and(&mut good, get(&side.a, i * d + i), |x| {
                x <= dlim && x >= dlim_inv
            });
            for j in i + 1..d {
                let upper = get(&side.a, i * d + j);
                if kind == Kind::Tril {
                    and(&mut good, upper, |x| x == 0.0);
                } else {
                    // Σ_ij (upper) against Σ_ji (lower): (Σ_ij − Σ_ji)² ≤
                    // tol²·|Σ_ii·Σ_jj|.
                    let lower = get(&side.a, j * d + i);
                    let (dii, djj) = (get(&side.a, i * d + i), get(&side.a, j * d + j));
                    for (l, g) in good.iter_mut().enumerate() {
                        let at = |v: &V<L>| v.get(l).copied().unwrap_or(f64::NAN);
                        let e = at(&upper) - at(&lower);
                        *g &= e * e <= tol2 * (at(&dii) * at(&djj)).abs();
                    }
                }
            }
        }
        for (o, g) in self.ok.iter_mut().zip(good) {
            *o &= g;
        }
    }

    /// Fills lane `l` with the identity pair (an unused lane).
    #[inline(always)]
    fn fill_unused<const D: usize>(&mut self, l: usize) {
        let d = self.dims::<D>();
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

    /// [`Lanes::run`] for at most `L` cells: the instruction set's version.
    fn run<T: Float + super::MvnReal>(
        &mut self,
        plan: &Plan<'_, T>,
        cells: &[usize],
        near: bool,
        sel: &[usize],
        rows: &mut [T],
    ) -> [bool; L] {
        #[cfg(target_arch = "x86_64")]
        {
            match crate::cpu::simd_level() {
                // SAFETY: the features these functions are compiled for were detected.
                "avx512" => return unsafe { simd::avx512(self, plan, cells, near, sel, rows) },
                "avx2" => return unsafe { simd::avx2(self, plan, cells, near, sel, rows) },
                _ => {}
            }
        }
        self.run_any(plan, cells, near, sel, rows)
    }

    /// [`Group::run_body`] for this d: compiled with d fixed for d ≤ 4.
    #[inline(always)]
    fn run_any<T: Float + super::MvnReal>(
        &mut self,
        plan: &Plan<'_, T>,
        cells: &[usize],
        near: bool,
        sel: &[usize],
        rows: &mut [T],
    ) -> [bool; L] {
        match self.d {
            1 => self.run_body::<1, T>(plan, cells, near, sel, rows),
            2 => self.run_body::<2, T>(plan, cells, near, sel, rows),
            3 => self.run_body::<3, T>(plan, cells, near, sel, rows),
            4 => self.run_body::<4, T>(plan, cells, near, sel, rows),
            _ => self.run_body::<0, T>(plan, cells, near, sel, rows),
        }
    }

    /// [`Group::run`]'s body, inlined into each instruction set's version.
    #[inline(always)]
    fn run_body<const D: usize, T: Float + super::MvnReal>(
        &mut self,
        plan: &Plan<'_, T>,
        cells: &[usize],
        near: bool,
        sel: &[usize],
        rows: &mut [T],
    ) -> [bool; L] {
        let k = sel.len();
        if k == 0 {
            return [false; L];
        }
        let n = cells.len();
        self.deferred = [false; L];
        let kinds = [plan.p.cov.kind(), plan.q.cov.kind()];
        let run = match cells {
            [c0, .., last] if n == L && *last == c0 + (L - 1) => plan.run_of(*c0, L),
            _ => None,
        };
        if let Some(run) = run {
            // LANES consecutive pairs: their inputs are contiguous (and
            // their lengths checked), read entry by entry across lanes.
            let d = self.dims::<D>();
            for (side, (mu, m)) in run.into_iter().enumerate() {
                if let Some(dst) = self.sides.get_mut(side) {
                    gather(&mut dst.a, m, d * d);
                }
                let dst = if side == 0 {
                    &mut self.mu1
                } else {
                    &mut self.dmu
                };
                gather(dst, mu, d);
            }
            self.ok = [true; L];
        } else {
            self.load_each::<D, T>(plan, cells);
        }
        self.check::<D>(0, kinds[0]);
        self.check::<D>(1, kinds[1]);
        let v = self.evaluate::<D>(kinds, near);
        // (position in a row, entry of v) of each measure written here.
        let mut picks = [(0usize, 0usize); 6];
        let mut np = 0;
        for (p, &j) in sel.iter().enumerate() {
            if let Some(i) = v.iter().position(|(m, _)| *m == j) {
                if let Some(x) = picks.get_mut(np) {
                    *x = (p, i);
                    np += 1;
                }
            }
        }
        let picks = picks.get(..np).unwrap_or_default();
        let mut accepted = [false; L];
        for (l, (acc, row)) in accepted
            .iter_mut()
            .zip(rows.chunks_exact_mut(k))
            .enumerate()
        {
            let lane = |x: &V<L>| x.get(l).copied().unwrap_or(f64::NAN);
            let ok = self.ok.get(l).copied().unwrap_or(false);
            if !ok || l >= n {
                continue;
            }
            // Only the measures computed here (the others are the scalar path's).
            for &(p, i) in picks {
                if let (Some(dst), Some((_, x))) = (row.get_mut(p), v.get(i)) {
                    *dst = T::from_f64(lane(x));
                }
            }
            *acc = true;
        }
        accepted
    }

    /// Loads the lanes of `cells` one by one (any cells of any plan).
    #[inline(always)]
    fn load_each<const D: usize, T: Float + super::MvnReal>(
        &mut self,
        plan: &Plan<'_, T>,
        cells: &[usize],
    ) {
        for l in 0..L {
            let good = if let Some(&c) = cells.get(l) {
                let (s1, s2) = plan.sides(c);
                let a = self.load::<D, T>(0, l, &s1);
                let b = self.load::<D, T>(1, l, &s2);
                a && b
            } else {
                false
            };
            if !good {
                self.fill_unused::<D>(l);
            }
            if let Some(o) = self.ok.get_mut(l) {
                *o = good;
            }
        }
    }

    /// The lower factor of side `s` (Cholesky, or the given factor), its
    /// reciprocal diagonal and Σ ln L_jj; lanes with a non-positive pivot
    /// are marked bad.
    #[inline(always)]
    fn factor<const D: usize>(&mut self, s: usize, kind: Kind) {
        let d = self.dims::<D>();
        let mut bad = [false; L];
        let Some(side) = self.sides.get_mut(s) else {
            return;
        };
        if kind == Kind::Tril {
            side.l.copy_from_slice(&side.a);
        }
        let mut ln_sum = LnSum::new();
        for j in 0..d {
            if kind == Kind::Cov {
                for i in j..d {
                    let mut acc = get(&side.a, i * d + j);
                    for kk in 0..j {
                        acc = sub_mul(acc, get(&side.l, i * d + kk), get(&side.l, j * d + kk));
                    }
                    if i == j {
                        for (b, x) in bad.iter_mut().zip(acc.iter_mut()) {
                            // NaN or ≤ 0: not positive definite.
                            let pos = *x > 0.0;
                            *b |= !pos;
                            if !pos {
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
            ln_sum.push(get(&side.l, j * d + j));
        }
        side.ln_det_half = ln_sum.total();
        for (o, b) in self.ok.iter_mut().zip(bad) {
            *o &= !b;
        }
    }

    /// The scale part of KL(a‖b) (M = Lb⁻¹La into `self.m`) and ‖Lb⁻¹Δμ‖².
    #[inline(always)]
    fn kl_parts<const D: usize>(&mut self, a: usize, b: usize) -> (V<L>, V<L>) {
        let d = self.dims::<D>();
        let (Some(sa), Some(sb)) = (self.sides.get(a), self.sides.get(b)) else {
            return (splat(f64::NAN), splat(f64::NAN));
        };
        let mut off = splat(0.0);
        let mut diag = splat(0.0);
        let mut ln_rho = LnSum::new();
        for c in 0..d {
            for i in c..d {
                let mut acc = get(&sa.l, i * d + c);
                for kk in c..i {
                    acc = sub_mul(acc, get(&sb.l, i * d + kk), get(&self.m, kk * d + c));
                }
                let mic = zip(acc, get(&sb.inv, i), |x, y| x * y);
                set(&mut self.m, i * d + c, mic);
                if i == c {
                    // Σ V(ρ) = Σ ½(ρ² − 1) − Σ ln ρ.
                    diag = zip(diag, mic, |s, r| s + 0.5 * (r * r - 1.0));
                    ln_rho.push(mic);
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
        let diag = zip(diag, ln_rho.total(), |v, l| v - l);
        (zip(diag, off, |x, y| x + 0.5 * y), q)
    }

    /// (Σ_s)_ij, i ≥ j, of side `s`: the input, or (L·Lᵀ)_ij for a factor.
    #[inline(always)]
    fn sigma<const D: usize>(&self, s: usize, kind: Kind, i: usize, j: usize) -> V<L> {
        let d = self.dims::<D>();
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

    /// Every lane's values, keyed by measure index; marks lanes not accepted.
    #[inline(always)]
    fn evaluate<const D: usize>(
        &mut self,
        kinds: [Kind; 2],
        near_pass: bool,
    ) -> [(usize, V<L>); 6] {
        let d = self.dims::<D>();
        // Δμ = μ1 − μ2 (μ2 was loaded into dmu).
        for i in 0..d {
            let v = zip(get(&self.mu1, i), get(&self.dmu, i), |a, b| a - b);
            set(&mut self.dmu, i, v);
        }
        self.factor::<D>(0, kinds[0]);
        self.factor::<D>(1, kinds[1]);
        let h0 = d as f64 * <f64 as Real>::HALF_LN_2PI_E;
        let [h1, h2] = [0, 1].map(|s| {
            let ln = self.sides.get(s).map_or(splat(f64::NAN), |x| x.ln_det_half);
            map(ln, |x| h0 + x)
        });
        // The far-apart formula everywhere; its KL decides the regime.
        let (mut kl_scale, q2) = self.kl_parts::<D>(0, 1);
        let (mut rkl_scale, q1) = if self.rkl {
            self.kl_parts::<D>(1, 0)
        } else {
            (splat(f64::NAN), splat(f64::NAN))
        };
        let mut maybe_near = [false; L];
        for ((m, &o), &x) in maybe_near.iter_mut().zip(&self.ok).zip(&kl_scale) {
            // NaN counts as close (the scalar path decides).
            *m = o && x.partial_cmp(&FAR_KL).is_none_or(|c| c.is_lt());
        }
        if self.f64_inputs {
            // Close pairs in f64 need the scalar path's refined formulation.
            for (o, m) in self.ok.iter_mut().zip(maybe_near) {
                *o &= !m;
            }
        } else if !near_pass {
            // Close f32 pairs: deferred to a pass of their own (packed, so
            // that the close-together formulation runs on full lane groups).
            self.deferred = maybe_near;
            for (o, m) in self.ok.iter_mut().zip(maybe_near) {
                *o &= !m;
            }
        } else if maybe_near.contains(&true) {
            let (nn, kl_near, rkl_near, good) = self.near::<D>(kinds);
            for l in 0..L {
                let lane = |v: &V<L>| v.get(l).copied().unwrap_or(f64::NAN);
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
        let kl = zip(kl_scale, q2, |s, q| s + 0.5 * q);
        // usize::MAX: not computed.
        let (rkl, jeffreys) = if self.rkl {
            let rkl = zip(rkl_scale, q1, |s, q| s + 0.5 * q);
            (
                (idx::REVERSE_KL, rkl),
                (idx::JEFFREYS, zip(kl, rkl, |a, b| a + b)),
            )
        } else {
            ((usize::MAX, kl), (usize::MAX, kl))
        };
        let out = [
            (idx::ENTROPY, h1),
            (idx::ENTROPY_Q, h2),
            (idx::KL, kl),
            (idx::CROSS_ENTROPY, zip(h1, kl, |h, k| h + k)),
            rkl,
            jeffreys,
        ];
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
    use super::{Group, Plan};
    use crate::pair::Float;

    /// # Safety
    /// The CPU must support AVX-512 F/VL/DQ/BW/CD (checked by the caller).
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx512cd,avx2,fma")]
    pub unsafe fn avx512<const L: usize, T: Float + super::super::MvnReal>(
        lanes: &mut Group<L>,
        plan: &Plan<'_, T>,
        cells: &[usize],
        near: bool,
        sel: &[usize],
        rows: &mut [T],
    ) -> [bool; L] {
        lanes.run_any(plan, cells, near, sel, rows)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA (checked by the caller).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2<const L: usize, T: Float + super::super::MvnReal>(
        lanes: &mut Group<L>,
        plan: &Plan<'_, T>,
        cells: &[usize],
        near: bool,
        sel: &[usize],
        rows: &mut [T],
    ) -> [bool; L] {
        lanes.run_any(plan, cells, near, sel, rows)
    }
}

#[cfg(test)]
mod tests;
