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
