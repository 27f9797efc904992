// The WGSL module sources, assembled at compile time from the files beside
// this one (docs/ARCHITECTURE.md §4.3): a precision prelude, the shared
// pieces (io, ln_exp, measures), then the kernels (entry points). The f32
// and f64 modules are the same text after different preludes.
//
// Included by src/gpu/kernel.rs (which exposes these sources) and by
// tests/shader.rs (which validates every one of them with naga), so both
// see the same assembly.

/// `concat!` of the prelude, the shared pieces and the given kernel files.
macro_rules! wgsl_module {
    ($prelude:literal $(, $kernel:literal)*) => {
        concat!(
            include_str!($prelude),
            "\n",
            include_str!("io.wgsl"),
            "\n",
            include_str!("ln_exp.wgsl"),
            "\n",
            include_str!("measures.wgsl")
            $(, "\n", include_str!($kernel))*
        )
    };
}

/// The f32 module: entry points `main`, `main_soa`, `main_grad`, `main_pairwise`.
pub const MAIN_F32: &str = wgsl_module!(
    "prelude_f32.wgsl",
    "divergence.wgsl",
    "gradients.wgsl",
    "pairwise.wgsl"
);

/// The f64 module: the same entry points as [`MAIN_F32`], on f64 data.
pub const MAIN_F64: &str = wgsl_module!(
    "prelude_f64.wgsl",
    "divergence.wgsl",
    "gradients.wgsl",
    "pairwise.wgsl"
);

/// The f32 diagonal module: entry points `main_diagonal`, `main_diagonal_wide`.
pub const DIAGONAL_F32: &str = wgsl_module!("prelude_f32.wgsl", "diagonal.wgsl");

/// The f64 diagonal module: the same entry points as [`DIAGONAL_F32`], on f64 data.
pub const DIAGONAL_F64: &str = wgsl_module!("prelude_f64.wgsl", "diagonal.wgsl");

/// The f32 full-covariance module: entry point `main_mvn` (`mvn_linalg.wgsl`, `mvn.wgsl`).
pub const MVN_F32: &str = wgsl_module!("prelude_f32.wgsl", "mvn_linalg.wgsl", "mvn.wgsl");

/// The f64 full-covariance module: the same entry point as [`MVN_F32`], on f64 data.
pub const MVN_F64: &str = wgsl_module!("prelude_f64.wgsl", "mvn_linalg.wgsl", "mvn.wgsl");
