//! The kernel is valid WGSL (naga parses and validates it), so a shader
//! error fails `cargo test` with a readable message, GPU or not. Every
//! module the crate assembles from `shaders/` (f32 and f64, the measures
//! module, the diagonal one and the full-covariance one) is checked.

/// The module sources, assembled exactly as `src/gpu/kernel.rs` does.
#[allow(dead_code)]
mod sources {
    include!("../shaders/modules.rs");
}

/// The entry points of the measures module, in both precisions.
const MAIN_ENTRIES: [&str; 4] = ["main", "main_soa", "main_grad", "main_pairwise"];

/// The entry points of the diagonal module, in both precisions.
const DIAGONAL_ENTRIES: [&str; 2] = ["main_diagonal", "main_diagonal_wide"];

/// The entry point of the full-covariance module, in both precisions.
const MVN_ENTRIES: [&str; 1] = ["main_mvn"];

/// The overrides every measures kernel (f32 and f64) declares.
const OVERRIDES: [&str; 12] = [
    "WORKGROUP_SIZE",
    "PARAM",
    "WRITE_CE",
    "WRITE_KL",
    "WRITE_ENTROPY",
    "WRITE_ENTROPY_Q",
    "WRITE_REVERSE_KL",
    "WRITE_JEFFREYS",
    "WRITE_BHATTACHARYYA",
    "WRITE_BHATTACHARYYA_COEFFICIENT",
    "WRITE_HELLINGER",
    "WRITE_WASSERSTEIN2",
];

/// `module` declares every name of [`OVERRIDES`] and has the entry points `entries`.
fn assert_interface(module: &naga::Module, entries: &[&str]) {
    let names: Vec<_> = module
        .overrides
        .iter()
        .filter_map(|(_, o)| o.name.clone())
        .collect();
    for needed in OVERRIDES {
        assert!(
            names.iter().any(|n| n == needed),
            "override {needed} missing: {names:?}"
        );
    }
    for entry in entries {
        assert!(
            module.entry_points.iter().any(|e| e.name == *entry),
            "entry point {entry} missing"
        );
    }
}

#[test]
fn shader_validates_with_naga() {
    let module = validate(sources::MAIN_F32, naga::valid::Capabilities::empty());
    assert_interface(&module, &MAIN_ENTRIES);
}

/// Parse and validate WGSL with naga, panicking with a readable message.
fn validate(src: &str, caps: naga::valid::Capabilities) -> naga::Module {
    let module = match naga::front::wgsl::parse_str(src) {
        Ok(m) => m,
        Err(e) => panic!("WGSL parse error:\n{}", e.emit_to_string(src)),
    };
    let mut validator = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps);
    if let Err(e) = validator.validate(&module) {
        panic!("WGSL validation error:\n{}", e.emit_to_string(src));
    }
    module
}

#[test]
fn f64_shader_validates_with_naga() {
    for (src, entries) in [
        (sources::MAIN_F64, &MAIN_ENTRIES[..]),
        (sources::DIAGONAL_F64, &DIAGONAL_ENTRIES[..]),
        (sources::MVN_F64, &MVN_ENTRIES[..]),
    ] {
        check_f64_module(src, entries);
    }
}

/// An f64 module validates with the f64 capabilities (and not without
/// either), has the f32 kernel's overrides and `entries`, and uses no f64
/// builtin beyond the arithmetic.
fn check_f64_module(src: &str, entries: &[&str]) {
    use naga::valid::Capabilities as C;
    let module = validate(src, C::FLOAT64 | C::SHADER_INT64);
    // The f32 kernel's overrides, all of them, and its entry points.
    assert_interface(&module, entries);

    // It needs both capabilities (so wgpu rejects it on devices without the
    // features, and the evaluator must not create it there).
    for caps in [C::FLOAT64, C::SHADER_INT64] {
        let parsed = naga::front::wgsl::parse_str(src).unwrap();
        let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps);
        assert!(v.validate(&parsed).is_err(), "validates with only {caps:?}");
    }

    // No builtin transcendental, square root or rounding on f64 anywhere
    // (docs/ARCHITECTURE.md §2.6: GLSL.std.450 defines the transcendentals for 16/32-bit
    // floats only, and lavapipe returns garbage; the kernel has its own
    // sqrt64 and round_even). The f32 square root (the seed of sqrt64) is allowed.
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        C::FLOAT64 | C::SHADER_INT64,
    )
    .validate(&module)
    .unwrap();
    use naga::MathFunction as M;
    let mut f32_sqrts = 0;
    for (handle, f) in module.functions.iter() {
        let fi = &info[handle];
        for (_, e) in f.expressions.iter() {
            if let naga::Expression::Math { fun, arg, .. } = e {
                assert!(
                    !matches!(
                        fun,
                        M::Log | M::Log2 | M::Exp | M::Exp2 | M::Pow | M::Frexp | M::Ldexp
                    ),
                    "builtin {fun:?} in the f64 kernel"
                );
                if matches!(fun, M::Sqrt | M::Round | M::InverseSqrt | M::Fma) {
                    let ty = fi[*arg].ty.inner_with(&module.types);
                    assert_eq!(
                        ty.scalar_width(),
                        Some(4),
                        "builtin {fun:?} on {ty:?} in the f64 kernel"
                    );
                    f32_sqrts += 1;
                }
            }
        }
    }
    assert!(f32_sqrts >= 1, "sqrt64's f32 seed not found");
}

#[test]
fn diagonal_shader_validates_with_naga() {
    let module = validate(sources::DIAGONAL_F32, naga::valid::Capabilities::empty());
    assert_interface(&module, &DIAGONAL_ENTRIES);
}

#[test]
fn mvn_shader_validates_with_naga() {
    let module = validate(sources::MVN_F32, naga::valid::Capabilities::empty());
    assert_interface(&module, &MVN_ENTRIES);
    // Its own pipeline constants (src/gpu/mvn.rs sets each).
    for needed in ["REFINE_BC", "BC_REFINE_LIMIT", "D"] {
        assert!(
            module
                .overrides
                .iter()
                .any(|(_, o)| o.name.as_deref() == Some(needed)),
            "override {needed} missing"
        );
    }
}
