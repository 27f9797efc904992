//! The f32 implementation of [`Real`](super::Real).
//!
//! KEEP IN SYNC with `shaders/prelude_f32.wgsl`: the same constants (the
//! WGSL prelude writes them as f32 literals, the series as Horner
//! polynomials of these coefficients) and the same bit-level primitives
//! (`frexp1`, `pow2`, `split_hi`, `exact_sub`); `sqrt` and `round_even` are
//! the IEEE operations there as here.

// Constants are written as published (fdlibm), digits beyond the type's precision included.
#![allow(clippy::excessive_precision)]

use super::real::atanh_coeffs_f32;
use super::Real;

impl_real!(
    f32,
    u32,
    i32,
    12,
    23,
    127,
    128,
    64,
    // 0x3f317180, 0x3717f7d1 (FreeBSD e_logf.c)
    6.931_381_225_6e-1,
    9.058_000_614_5e-6,
    // Lg1..Lg4 of FreeBSD e_logf.c (0xaaaaaa.0p-24, 0xccce13.0p-25, 0x91e9ee.0p-25, 0xf89e26.0p-26)
    [
        0.666_666_626_93,
        0.400_009_721_52,
        0.284_987_866_88,
        0.242_790_788_41
    ],
    // R(t) = Σ t^j/(2j + 3), 7 terms
    atanh_coeffs_f32::<7>(),
    // R(t) = Σ t^j/(2j + 3), 15 terms
    atanh_coeffs_f32::<15>(),
    // FreeBSD e_expf.c: ln2HI 0x3f317200, ln2LO 0x35bfbe8e, P1 0xaaaaa8.0p-26, P2 -0xb55215.0p-32
    6.931_457_519_5e-1,
    1.428_606_765_3e-6,
    [1.666_662_544_0e-1, -2.766_733_290_6e-3],
    352.0,
    [
        1.0,
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5040.0,
        1.0 / 40320.0,
        1.0 / 362880.0,
        1.0 / 3628800.0,
        1.0 / 39916800.0,
        1.0 / 479001600.0
    ],
    150.0
);
