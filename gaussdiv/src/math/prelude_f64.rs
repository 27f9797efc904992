//! The f64 implementation of [`Real`](super::Real).
//!
//! KEEP IN SYNC with `shaders/prelude_f64.wgsl`: the same constants
//! (checked by `tests/shader.rs`) and the same bit-level primitives; the
//! WGSL has its own square root (`sqrt64`) and rounding (`round_even` by
//! conversions), as f64 builtins are not relied on there
//! (docs/ARCHITECTURE.md §2.6).

// Constants are written as published (fdlibm), digits beyond the type's precision included.
#![allow(clippy::excessive_precision)]

use super::real::atanh_coeffs_f64;
use super::Real;

impl_real!(
    f64,
    u64,
    i64,
    27,
    52,
    1023,
    1024,
    512,
    // fdlibm e_log.c
    6.931_471_803_691_238_164_90e-1,
    1.908_214_929_270_587_700_02e-10,
    [
        6.666_666_666_666_735_130e-1,
        3.999_999_999_940_941_908e-1,
        2.857_142_874_366_239_149e-1,
        2.222_219_843_214_978_396e-1,
        1.818_357_216_161_805_012e-1,
        1.531_383_769_920_937_332e-1,
        1.479_819_860_511_658_591e-1
    ],
    // R(t) = Σ t^j/(2j + 3), 16 terms
    atanh_coeffs_f64::<16>(),
    // R(t) = Σ t^j/(2j + 3), 36 terms
    atanh_coeffs_f64::<36>(),
    // fdlibm e_exp.c
    6.931_471_803_691_238_164_90e-1,
    1.908_214_929_270_587_700_02e-10,
    [
        1.666_666_666_666_660_190_37e-1,
        -2.777_777_777_701_559_338_42e-3,
        6.613_756_321_437_934_361_17e-5,
        -1.653_390_220_546_525_153_90e-6,
        4.138_136_797_057_238_460_39e-8
    ],
    3000.0,
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
        1.0 / 479001600.0,
        1.0 / 6227020800.0,
        1.0 / 87178291200.0,
        1.0 / 1307674368000.0,
        1.0 / 20922789888000.0,
        1.0 / 355687428096000.0,
        1.0 / 6402373705728000.0,
        1.0 / 121645100408832000.0,
        1.0 / 2432902008176640000.0,
        1.0 / 51090942171709440000.0
    ],
    1200.0
);
