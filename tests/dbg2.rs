#[test]
fn dbg() {
    let p = gaussdiv::GaussianPair::new(
        -8.667617294122465e-6,
        3.2091575622558594e1,
        1.967298203453538e-6,
        3.2091575622558594e1,
    );
    println!(
        "{:?}",
        gaussdiv::cpu::measures32(&p, gaussdiv::Param::LogStd)
    );
    println!(
        "{:?}",
        gaussdiv::cpu::measures64(&p.to_f64(), gaussdiv::Param::LogStd)
    );
}
