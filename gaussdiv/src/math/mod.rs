//! The scalar formulas, generic over `f32` and `f64`.
//!
//! One Rust file per WGSL file (docs/ARCHITECTURE.md §4.3), each mirrored
//! step for step (same names, same order of operations, same constants), so
//! that the GPU's f32 and f64 results equal these functions' bit for bit:
//!
//! | Rust | WGSL (`shaders/`) |
//! |---|---|
//! | `real.rs` (the [`Real`] trait) and `prelude_f32.rs` | `prelude_f32.wgsl` |
//! | `prelude_f64.rs` | `prelude_f64.wgsl` |
//! | `ln_exp.rs` | `ln_exp.wgsl` |
//! | `measures.rs` ([`measures`]) | `measures.wgsl` |
//! | `gradients.rs` ([`gradients`]) | `gradients.wgsl` |
//! | `src/diagonal.rs` | `diagonal.wgsl` |
//!
//! A change on one side is a change on both. The WGSL formula files are
//! shared by the f32 and the f64 kernels; only the preludes differ.
//!
//! # Formulation (docs/ARCHITECTURE.md §2)
//!
//! Write σ = m·2^k with m ∈ [1, 2) (exact, from the bits; subnormals are
//! normalised with integer operations only). Then, with K = k1 − k2:
//!
//! * entropy H(p1) = ½(1 + ln 2π) + ln σ1, with our own `ln` (fdlibm's
//!   reduction and minimax polynomial, ln 2 split into high and low parts);
//! * mean part M = ½·D², D = |μ1 − μ2| / σ2 = q·2^E with q = m_h / m2 ∈ (½, 2):
//!   the square is formed from q and the exponent is carried as an integer, so
//!   nothing overflows or underflows before the result does;
//! * scale part V(ρ) = ½(ρ² − 1) − ln ρ, ρ = σ1/σ2:
//!   - near ρ = 1 (ρ ∈ [½, 2], where σ1 − σ2 is exact), with
//!     w = (σ1 − σ2)/(σ1 + σ2) ∈ [−⅓, ⅓] and ln ρ = 2·atanh(w):
//!     V = 2w²·[(2 − w)/(1 − w)² − w·R(w²)], R(t) = Σ t^j/(2j + 3),
//!     a sum of terms of one sign — no `ln`, no cancellation;
//!   - elsewhere V = ½r²·2^(2K) − ½ − ln ρ with r = m1/m2 and
//!     ln ρ = ln r + K·ln 2 (condition number below 4.2 there);
//! * KL = M + V, every piece non-negative; the large terms are summed at a
//!   common power-of-two scale, so overflow is detected by comparison and
//!   +inf is produced explicitly rather than by IEEE overflow;
//! * cross-entropy = H(p1) + KL.
//!
//! # The other measures ([`measures`])
//!
//! * reverse KL: the same with the roles swapped; H(p2) = ½(1 + ln 2π) + ln σ2;
//! * Jeffreys J = ½Δμ²(σ1⁻² + σ2⁻²) + V(ρ) + V(1/ρ): one evaluation of the
//!   KL shape — the ln ρ terms cancel exactly, so far from ρ = 1 the rest is
//!   ½ρ_big² + (½ρs² − 1) (ρs = σ_small/σ_big), without cancellation;
//! * Bhattacharyya D_B = X + ½ ln cosh ln ρ, X = ¼Δμ²/(σ1² + σ2²) =
//!   ¼(Δμ/σ_big)²/(1 + ρs²); ½ ln cosh ln ρ = atanh(w²) near ρ = 1 and
//!   ½(|ln ρ| − ln 2 + ln(1 + ρs²)) elsewhere, ln(1 + x) = 2 atanh(x/(2 + x));
//!   all series in +, −, ×, ÷;
//! * coefficient exp(−D_B) = exp(−X)·√(sech ln ρ), sech = (1 − w²)/(1 + w²) or
//!   2ρs/(1 + ρs²): the large log part never goes through `exp`. An error δ in
//!   X is an error δ *relative* in the coefficient, so X is formed in
//!   two-float accuracy: μ1 − μ2 with its exact rounding error, exact squares
//!   by bit-mask splitting, σ1² + σ2² exactly (or to 2⁻³⁰ from our `exp` with
//!   log-parameters), a corrected quotient. Every cancelling difference of
//!   these error-free transformations is taken on the bit patterns
//!   ([`Real::exact_sub`]), because GPU compilers may rewrite `(a + b) − a`,
//!   `(a/b)·b` or reassociate sums (Mesa's NIR does);
//! * Hellinger √(1 − e⁻ᴰ): for D < ½, √D·√φ(D), φ(D) = (1 − e⁻ᴰ)/D by its
//!   series and √D = hypot(√X, √(log part)) formed without squaring (tiny
//!   distances do not underflow); √(1 − e⁻ᴰ) directly elsewhere;
//! * Wasserstein-2: hypot(Δμ, σ1 − σ2) at a common power-of-two scale, with
//!   σ1 − σ2 formed without cancellation in each parameterisation.
//!
//! # Parameterisations ([`param`])
//!
//! Each input form is converted to the representation above as accurately as
//! it allows: σ² (and 1/σ²) keep their exact mantissas — ρ² is a ratio of
//! inputs, ln σ = ½ ln a, near ρ = 1 u = (σ1² − σ2²)/(σ1² + σ2²) = tanh ln ρ
//! gives V = u²[1/(1 − u) − u·R(u²)] directly; ln σ and ln σ² give ln σ and
//! ln ρ directly (near ρ = 1, V = (ln ρ)²·φ₂(2 ln ρ), φ₂(x) = 2(eˣ − 1 − x)/x²),
//! and σ², 1/σ², ρ² from our own `exp` (fdlibm's reduction and polynomial,
//! under one ulp, with the exponent carried as an integer and saturated
//! beyond the exact range), so σ may lie far outside the format's range.

#[macro_use]
mod real;
mod gradients;
mod ln_exp;
mod measures;
mod prelude_f32;
mod prelude_f64;
#[cfg(test)]
mod tests;

pub use gradients::{gradients, GRADIENTS};
#[allow(unused_imports)]
// the crate-wide path `math::fast_two_sum`, kept from before the split
pub(crate) use ln_exp::fast_two_sum;
pub use ln_exp::{exp_split, expm1, ln, scale_exp};
// The full-covariance formulas (`crate::mvn`) build on these kernels.
pub(crate) use ln_exp::{horner, ln_mant, ln_mant_kf, scale2, scale_part_near};
#[cfg(test)]
pub use measures::divergences;
pub(crate) use measures::measures_fast;
pub use measures::{idx, measures, param, MEASURES};
pub use real::Real;
