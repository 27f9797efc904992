//! The kernel is valid WGSL (naga parses and validates it), so a shader
//! error fails `cargo test` with a readable message, GPU or not.

#[test]
fn shader_validates_with_naga() {
    let src = gaussdiv::gpu::SHADER_SOURCE;
    let module = match naga::front::wgsl::parse_str(src) {
        Ok(m) => m,
        Err(e) => panic!("WGSL parse error:\n{}", e.emit_to_string(src)),
    };
    let mut validator = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::empty(),
    );
    if let Err(e) = validator.validate(&module) {
        panic!("WGSL validation error:\n{}", e.emit_to_string(src));
    }
    let names: Vec<_> = module
        .overrides
        .iter()
        .filter_map(|(_, o)| o.name.clone())
        .collect();
    for needed in [
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
    ] {
        assert!(
            names.iter().any(|n| n == needed),
            "override {needed} missing: {names:?}"
        );
    }
    assert!(module.entry_points.iter().any(|e| e.name == "main"));
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
    use naga::valid::Capabilities as C;
    let src = gaussdiv::gpu::SHADER_SOURCE_F64;
    let module = validate(src, C::FLOAT64 | C::SHADER_INT64);
    let names: Vec<_> = module
        .overrides
        .iter()
        .filter_map(|(_, o)| o.name.clone())
        .collect();
    for needed in ["WORKGROUP_SIZE", "WRITE_CE", "WRITE_KL", "WRITE_ENTROPY"] {
        assert!(
            names.iter().any(|n| n == needed),
            "override {needed} missing: {names:?}"
        );
    }
    assert!(module.entry_points.iter().any(|e| e.name == "main"));

    // It needs both capabilities (so wgpu rejects it on devices without the
    // features, and the evaluator must not create it there).
    for caps in [C::FLOAT64, C::SHADER_INT64] {
        let parsed = naga::front::wgsl::parse_str(src).unwrap();
        let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps);
        assert!(v.validate(&parsed).is_err(), "validates with only {caps:?}");
    }

    // No builtin transcendental on f64 anywhere (DESIGN §2.6: GLSL.std.450
    // defines them for 16/32-bit floats only; lavapipe returns garbage).
    use naga::MathFunction as M;
    for (_, f) in module.functions.iter() {
        for (_, e) in f.expressions.iter() {
            if let naga::Expression::Math { fun, .. } = e {
                assert!(
                    !matches!(
                        fun,
                        M::Log
                            | M::Log2
                            | M::Exp
                            | M::Exp2
                            | M::Pow
                            | M::Sqrt
                            | M::Frexp
                            | M::Ldexp
                    ),
                    "builtin {fun:?} in the f64 kernel"
                );
            }
        }
    }
}

/// KEEP IN SYNC, checked: the f64 kernel's constants are exactly the f64
/// instantiation's of src/math.rs.
#[test]
fn f64_shader_constants_match_math_rs() {
    use gaussdiv::math::Real;
    let module = validate(
        gaussdiv::gpu::SHADER_SOURCE_F64,
        naga::valid::Capabilities::FLOAT64 | naga::valid::Capabilities::SHADER_INT64,
    );
    let value = |name: &str| -> f64 {
        let (_, c) = module
            .constants
            .iter()
            .find(|(_, c)| c.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("constant {name} missing"));
        match module.global_expressions[c.init] {
            naga::Expression::Literal(naga::Literal::F64(v)) => v,
            ref other => panic!("{name}: not an f64 literal: {other:?}"),
        }
    };
    let same = |name: &str, want: f64| {
        let got = value(name);
        assert_eq!(got.to_bits(), want.to_bits(), "{name}: {got:e} vs {want:e}");
    };
    for (i, c) in <f64 as Real>::LN_COEFFS.iter().enumerate() {
        same(&format!("LG{}", i + 1), *c);
    }
    assert_eq!(<f64 as Real>::ATANH_COEFFS.len(), 16);
    for (i, c) in <f64 as Real>::ATANH_COEFFS.iter().enumerate() {
        same(&format!("R{i}"), *c);
    }
    same("LN2_HI", <f64 as Real>::LN2_HI);
    same("LN2_LO", <f64 as Real>::LN2_LO);
    same("SQRT2", <f64 as Real>::SQRT2);
    same("HALF_LN_2PI_E", <f64 as Real>::HALF_LN_2PI_E);
    same("HALVE_THRESHOLD", <f64 as Real>::HALVE_THRESHOLD);
    same("F64_MAX", <f64 as Real>::MAX);
}

#[test]
fn diagonal_shader_validates_with_naga() {
    let module = validate(
        gaussdiv::gpu::DIAGONAL_SHADER_SOURCE,
        naga::valid::Capabilities::empty(),
    );
    for entry in ["main", "main_diagonal", "main_diagonal_wide"] {
        assert!(
            module.entry_points.iter().any(|e| e.name == entry),
            "entry point {entry} missing"
        );
    }
}
