//! The lanes' close-together formulation (the module docs of `fast`).

use super::ops::{get, map, set, splat, sub_mul, zip, V};
use super::{Group, Kind};
use crate::math::scale_part_near;

impl<const L: usize> Group<L> {
    /// The close-together formulation, for f32 inputs (exact in f64):
    /// N = L2⁻¹(Σ1 − Σ2)L2⁻ᵀ, I + N = (I + E)(I + E)ᵀ factored directly
    /// in E, KL = Σ_j φ(e_jj) + ½Σ_{i>j} e_ij², and the reverse KL the same
    /// of G = (I + E)⁻¹ − I (formulas.rs). Returns ‖N‖²_F, the two scale
    /// parts and whether the factorisation of I + N succeeded.
    #[inline(always)]
    pub(super) fn near<const D: usize>(
        &mut self,
        kinds: [Kind; 2],
    ) -> (V<L>, V<L>, V<L>, [bool; L]) {
        let d = self.dims::<D>();
        // ΔΣ (symmetric, full) into y.
        for i in 0..d {
            for j in 0..=i {
                let v = zip(
                    self.sigma::<D>(0, kinds[0], i, j),
                    self.sigma::<D>(1, kinds[1], i, j),
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
                [false; L],
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
        let mut good = [true; L];
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
                if !*g {
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
        if !self.rkl {
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
}
