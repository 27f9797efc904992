//! Input validation (docs/ARCHITECTURE.md §6).
//!
//! Valid: μ finite; σ finite and > 0, subnormal σ included. In the other
//! parameterisations (see [`Param`]): a variance or a precision finite and
//! positive (subnormal included); a log-standard-deviation or log-variance
//! finite.
//! Everything else is reported, by default as [`Error::InvalidInput`] naming
//! the first bad row and the field ([`Field::Sigma1`] / [`Field::Sigma2`] stand
//! for the scale parameters `a1`, `a2` in any parameterisation, and the reason
//! names it), or — with [`OnInvalid::Nan`] — as NaN in that row's results.

use crate::error::{Error, Field, Result};
use crate::math::Real;
use crate::pair::{GaussianPair, GaussianPair64, Param};
use rayon::prelude::*;

/// What to do with pairs that are not valid Gaussians.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OnInvalid {
    /// Fail with [`Error::InvalidInput`] naming the first invalid pair (default).
    #[default]
    Error,
    /// Write NaN for every measure of an invalid pair and evaluate the rest.
    Nan,
}

/// Why one parameter is invalid, or `None` if the pair is valid.
fn check<T: Real>(params: [T; 4], param: Param) -> Option<(Field, &'static str)> {
    let positive = match param {
        Param::Std => Some("a standard deviation must be > 0"),
        Param::Var => Some("a variance must be > 0"),
        Param::Precision => Some("a precision must be > 0"),
        Param::LogStd | Param::LogVar => None,
    };
    for (i, (&v, field)) in params.iter().zip(Field::ALL).enumerate() {
        let is_scale = i % 2 == 1;
        #[allow(clippy::eq_op)]
        let is_nan = v != v;
        if is_nan {
            return Some((field, "not a number"));
        }
        if !v.is_finite() {
            return Some((field, "infinite"));
        }
        if let (true, Some(reason)) = (is_scale, positive) {
            if v <= T::ZERO {
                return Some((field, reason));
            }
        }
    }
    None
}

/// The first problem of a pair whose `sigma` fields hold `a1`, `a2` in
/// parameterisation `param`, if any: μ must be finite; σ, σ², 1/σ² finite
/// and > 0; ln σ, ln σ² finite.
pub fn check_param(p: &GaussianPair, param: Param) -> Option<(Field, &'static str)> {
    check([p.mu1, p.sigma1, p.mu2, p.sigma2], param)
}

/// [`check_param`] for f64 pairs.
pub fn check_param_f64(p: &GaussianPair64, param: Param) -> Option<(Field, &'static str)> {
    check([p.mu1, p.sigma1, p.mu2, p.sigma2], param)
}

fn first_invalid<P: Sync>(
    pairs: &[P],
    offset: usize,
    check: impl Fn(&P) -> Option<(Field, &'static str)> + Sync,
    value: impl Fn(&P, Field) -> f64,
) -> Result<()> {
    // Small inputs are scanned on this thread (no task overhead).
    let first = if pairs.len() < 1 << 15 {
        pairs.iter().position(|p| check(p).is_some())
    } else {
        pairs.par_iter().position_first(|p| check(p).is_some())
    };
    match first {
        None => Ok(()),
        Some(i) => match pairs.get(i) {
            Some(p) => {
                let (field, reason) = check(p).unwrap_or((Field::Mu1, "invalid"));
                Err(Error::InvalidInput {
                    index: offset + i,
                    field,
                    value: value(p, field),
                    reason,
                })
            }
            None => Ok(()),
        },
    }
}

/// [`validate_param`] for a chunk that starts at row `offset` of a larger input.
pub fn validate_param_at(pairs: &[GaussianPair], param: Param, offset: usize) -> Result<()> {
    first_invalid(
        pairs,
        offset,
        |p| check_param(p, param),
        |p, f| f64::from(field_f32(p, f)),
    )
}

/// [`validate_param_at`] for f64 pairs.
pub fn validate_param_f64_at(pairs: &[GaussianPair64], param: Param, offset: usize) -> Result<()> {
    first_invalid(
        pairs,
        offset,
        |p| check_param_f64(p, param),
        |p, f| match f {
            Field::Mu1 => p.mu1,
            Field::Sigma1 => p.sigma1,
            Field::Mu2 => p.mu2,
            Field::Sigma2 => p.sigma2,
        },
    )
}

fn field_f32(p: &GaussianPair, f: Field) -> f32 {
    match f {
        Field::Mu1 => p.mu1,
        Field::Sigma1 => p.sigma1,
        Field::Mu2 => p.mu2,
        Field::Sigma2 => p.sigma2,
    }
}

/// Branch-free screen of a slice: `(any invalid pair, any pair needing a
/// host fix-up)`. Vectorises (compiled for AVX-512 and AVX2 too, chosen at
/// run time like the CPU backend's loops); the exact (slower) scans run only
/// when it finds something.
///
/// Pairs in parameterisation `param`: the scale fields must be finite and
/// positive for σ, σ² and 1/σ², finite for ln σ and ln σ²; the fix-up rule
/// is about μ only, whatever the parameterisation.
pub(crate) fn screen_param(pairs: &[GaussianPair], param: Param) -> (bool, bool) {
    let positive = !matches!(param, Param::LogStd | Param::LogVar);
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: the features these functions are compiled for were detected.
        match (crate::cpu::simd_level(), positive) {
            ("avx512", true) => return unsafe { screen_simd::avx512::<true>(pairs) },
            ("avx512", false) => return unsafe { screen_simd::avx512::<false>(pairs) },
            ("avx2", true) => return unsafe { screen_simd::avx2::<true>(pairs) },
            ("avx2", false) => return unsafe { screen_simd::avx2::<false>(pairs) },
            _ => {}
        }
    }
    if positive {
        screen_body::<true>(pairs)
    } else {
        screen_body::<false>(pairs)
    }
}

#[cfg(target_arch = "x86_64")]
mod screen_simd {
    use super::{screen_body, GaussianPair};

    /// # Safety
    /// The CPU must support AVX-512 F/VL/DQ/BW/CD (checked by the caller).
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx512cd,avx2,fma")]
    pub unsafe fn avx512<const POSITIVE: bool>(pairs: &[GaussianPair]) -> (bool, bool) {
        screen_body::<POSITIVE>(pairs)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA (checked by the caller).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2<const POSITIVE: bool>(pairs: &[GaussianPair]) -> (bool, bool) {
        screen_body::<POSITIVE>(pairs)
    }
}

/// The screen's flags for word `j` of a slice of pairs seen as `u32` words
/// (four per pair: μ1, a1, μ2, a2), `y` the word two places on (μ2 when
/// `x` is μ1): bit 0 invalid, bit 1 needs a host fix-up. `POSITIVE`: the
/// scale parameters must be > 0 (σ, σ², 1/σ²), else only finite (ln σ, ln σ²).
#[inline(always)]
fn word_flags<const POSITIVE: bool>(j: usize, x: u32, y: u32) -> u32 {
    const EXP: u32 = 0x7f80_0000;
    // Subnormal (non-zero): exponent field zero, value non-zero.
    let tiny = |b: u32| (b & EXP) == 0 && (b & 0x7fff_ffff) != 0;
    let sigma = j & 1 == 1;
    // σ valid: 0 < σ ≤ MAX (sign clear, not zero, exponent not all ones);
    // μ valid: finite.
    let bad = if sigma && POSITIVE {
        x.wrapping_sub(1) >= 0x7f7f_ffff
    } else {
        (x & EXP) == EXP
    };
    // Subnormal μ, or subnormal μ1 − μ2 (formed at the μ1 words).
    let d = (f32::from_bits(x) - f32::from_bits(y)).to_bits();
    let fix = (!sigma && tiny(x)) || (j & 3 == 0 && tiny(d));
    u32::from(bad) | (u32::from(fix) << 1)
}

/// The screen over the pairs' words in one flat, unit-stride pass (no
/// de-interleaving of the four fields; the word's position says which test
/// applies), an OR reduction that vectorises at memory speed.
#[inline(always)]
fn screen_body<const POSITIVE: bool>(pairs: &[GaussianPair]) -> (bool, bool) {
    let w: &[u32] = bytemuck::cast_slice(pairs);
    let mut flags = 0u32;
    let ahead = w.get(2..).unwrap_or_default();
    for (j, (&x, &y)) in w.iter().zip(ahead).enumerate() {
        flags |= word_flags::<POSITIVE>(j, x, y);
    }
    // The last two words (μ2 and σ2 of the last pair): no difference is formed there.
    for (j, &x) in w.iter().enumerate().skip(w.len().saturating_sub(2)) {
        flags |= word_flags::<POSITIVE>(j, x, 0);
    }
    (flags & 1 != 0, flags & 2 != 0)
}

/// Whether the GPU kernel may be inexact for this (valid) pair because
/// floating-point arithmetic on it would meet a subnormal μ or μ1 − μ2,
/// which WGSL allows a device to flush to zero (docs/ARCHITECTURE.md §2.5). Subnormal σ
/// is handled exactly by the kernel (integer decomposition) and is not
/// listed; nor are subnormal variances or precisions (decomposed likewise)
/// or log-parameters (only ever added to, or exponentiated). The host path
/// recomputes such rows on the CPU.
#[inline]
pub(crate) fn needs_host_fixup(p: &GaussianPair) -> bool {
    let tiny = |x: f32| x != 0.0 && x.abs() < f32::MIN_POSITIVE;
    tiny(p.mu1) || tiny(p.mu2) || tiny(p.mu1 - p.mu2)
}

/// [`screen_param`] in the σ parameterisation.
#[cfg(test)]
fn screen(pairs: &[GaussianPair]) -> (bool, bool) {
    screen_param(pairs, Param::Std)
}

/// [`screen_param`] for f64 pairs (σ parameterisation).
pub(crate) fn screen_f64(pairs: &[GaussianPair64]) -> (bool, bool) {
    const EXP: u64 = 0x7ff0_0000_0000_0000;
    const MAX_BITS: u64 = 0x7fef_ffff_ffff_ffff;
    let mut invalid = false;
    let mut fixup = false;
    for p in pairs {
        let (m1, s1, m2, s2) = (
            p.mu1.to_bits(),
            p.sigma1.to_bits(),
            p.mu2.to_bits(),
            p.sigma2.to_bits(),
        );
        let bad_sigma = s1.wrapping_sub(1) >= MAX_BITS || s2.wrapping_sub(1) >= MAX_BITS;
        let bad_mu = (m1 & EXP) == EXP || (m2 & EXP) == EXP;
        invalid |= bad_sigma | bad_mu;
        let d = (p.mu1 - p.mu2).to_bits();
        let tiny = |b: u64| (b & EXP) == 0 && (b & !(1 << 63)) != 0;
        fixup |= tiny(m1) | tiny(m2) | tiny(d);
    }
    (invalid, fixup)
}

/// [`needs_host_fixup`] for f64 pairs (the f64 kernel on a device that
/// flushes subnormal doubles, as lavapipe does).
#[inline]
pub(crate) fn needs_host_fixup_f64(p: &GaussianPair64) -> bool {
    let tiny = |x: f64| x != 0.0 && x.abs() < f64::MIN_POSITIVE;
    tiny(p.mu1) || tiny(p.mu2) || tiny(p.mu1 - p.mu2)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The branch-free screen agrees with the exact checks on every class of bit pattern.
    #[test]
    fn screen_agrees_with_the_exact_checks() {
        let specials = [
            0u32,
            0x8000_0000,
            1,
            0x8000_0001,
            0x007f_ffff,
            0x0080_0000,
            0x3f80_0000,
            0xbf80_0000,
            0x7f7f_ffff,
            0xff7f_ffff,
            0x7f80_0000,
            0xff80_0000,
            0x7fc0_0000,
            0xffc0_0001,
            0x0080_0001,
        ];
        let mut n = 0;
        for &a in &specials {
            for &b in &specials {
                for &c in &specials[..6] {
                    let p = GaussianPair::new(
                        f32::from_bits(c),
                        f32::from_bits(a),
                        f32::from_bits(b ^ c),
                        f32::from_bits(b),
                    );
                    for param in Param::ALL {
                        let (invalid, fixup) = screen_param(&[p], param);
                        assert_eq!(invalid, check_param(&p, param).is_some(), "{param} {p:?}");
                        assert_eq!(fixup, needs_host_fixup(&p), "{param} {p:?}");
                    }
                    let (invalid, fixup) = screen(&[p]);
                    assert_eq!(invalid, check_param(&p, Param::Std).is_some(), "{p:?}");
                    assert_eq!(fixup, needs_host_fixup(&p), "{p:?}");
                    // The same pair at every position of a longer slice of
                    // ordinary pairs (the screen reads words across pairs).
                    for len in [2usize, 5, 37] {
                        for at in 0..len {
                            let mut v: Vec<GaussianPair> = (0..len)
                                .map(|i| GaussianPair::new(i as f32, 1.0, -(i as f32), 2.0))
                                .collect();
                            v[at] = p;
                            assert_eq!(screen(&v), (invalid, fixup), "{p:?} at {at} of {len}");
                        }
                    }
                    n += 1;
                }
            }
        }
        assert!(n > 1000);
        // μ1 − μ2 subnormal although both are normal
        let p = GaussianPair::new(1.5e-38, 1.0, 1.4e-38, 1.0);
        assert_eq!(screen(&[p]), (false, true));
    }

    /// The same for the f64 screen.
    #[test]
    fn screen_f64_agrees_with_the_exact_checks() {
        let specials = [
            0u64,
            1 << 63,
            1,
            (1 << 63) | 1,
            0x000f_ffff_ffff_ffff,
            0x0010_0000_0000_0000,
            0x3ff0_0000_0000_0000,
            0xbff0_0000_0000_0000,
            0x7fef_ffff_ffff_ffff,
            0xffef_ffff_ffff_ffff,
            0x7ff0_0000_0000_0000,
            0xfff0_0000_0000_0000,
            0x7ff8_0000_0000_0000,
            0xfff8_0000_0000_0001,
            0x0010_0000_0000_0001,
        ];
        let mut n = 0;
        for &a in &specials {
            for &b in &specials {
                for &c in &specials[..6] {
                    let p = GaussianPair64 {
                        mu1: f64::from_bits(c),
                        sigma1: f64::from_bits(a),
                        mu2: f64::from_bits(b ^ c),
                        sigma2: f64::from_bits(b),
                    };
                    let (invalid, fixup) = screen_f64(&[p]);
                    assert_eq!(invalid, check_param_f64(&p, Param::Std).is_some(), "{p:?}");
                    assert_eq!(fixup, needs_host_fixup_f64(&p), "{p:?}");
                    n += 1;
                }
            }
        }
        assert!(n > 1000);
        let p = GaussianPair64 {
            mu1: 2.5e-308,
            sigma1: 1.0,
            mu2: 2.4e-308,
            sigma2: 1.0,
        };
        assert_eq!(screen_f64(&[p]), (false, true));
    }
}
