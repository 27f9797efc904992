//! `gaussdiv eval PAIRS.npz` (full-covariance pairs) and `bench --mvn` from
//! outside: results equal the library's, invalid pairs are named or NaN,
//! bad archives exit 2 and leave no output.
use gaussdiv::{
    Backend, Batch, Covariance, Evaluator, Metric, Metrics, MvnPairs, OnInvalid, Request,
};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gaussdiv"));
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        c.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    c.args(args).output().expect("run gaussdiv")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An NPY member: little-endian f32 ("<f4") or f64 ("<f8") values.
fn npy(descr: &str, shape: &[usize], bytes: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let total = (10 + dict.len() + 1).next_multiple_of(64);
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    h.extend_from_slice(&((total - 10) as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.resize(total - 1, b' ');
    h.push(b'\n');
    h.extend_from_slice(bytes);
    h
}

fn write_npz(path: &Path, members: &[(&str, Vec<u8>)], deflate: bool) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let method = if deflate {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let opts = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, data) in members {
        z.start_file(format!("{name}.npy"), opts).unwrap();
        z.write_all(data).unwrap();
    }
    z.finish().unwrap();
}

/// A reproducible batch of f64 pairs of dimension d: covariances L·Lᵀ.
struct Set {
    n: usize,
    d: usize,
    mu1: Vec<f64>,
    cov1: Vec<f64>,
    mu2: Vec<f64>,
    cov2: Vec<f64>,
}

fn set(n: usize, d: usize) -> Set {
    let mut s = 0x1234_5678_9abc_def1u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut spd = |out: &mut Vec<f64>| {
        let mut l = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..=i {
                l[i * d + j] = if i == j { 0.5 + next() } else { next() - 0.5 };
            }
        }
        for i in 0..d {
            for j in 0..d {
                let (r, c) = (i.max(j), i.min(j));
                out.push((0..=c).map(|k| l[r * d + k] * l[c * d + k]).sum());
            }
        }
    };
    let (mut cov1, mut cov2) = (Vec::new(), Vec::new());
    for _ in 0..n {
        spd(&mut cov1);
        spd(&mut cov2);
    }
    let mu1 = (0..n * d).map(|i| (i % 7) as f64 * 0.25).collect();
    let mu2 = (0..n * d).map(|i| (i % 5) as f64 * -0.5).collect();
    Set {
        n,
        d,
        mu1,
        cov1,
        mu2,
        cov2,
    }
}

fn bytes_f64(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn bytes_f32(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|&x| (x as f32).to_le_bytes()).collect()
}

fn members(s: &Set, f32_in: bool, names: [&str; 2]) -> Vec<(&'static str, Vec<u8>)> {
    type Encode = fn(&[f64]) -> Vec<u8>;
    let (descr, b): (&str, Encode) = if f32_in {
        ("<f4", bytes_f32)
    } else {
        ("<f8", bytes_f64)
    };
    let leak = |n: &str| -> &'static str { Box::leak(n.to_string().into_boxed_str()) };
    vec![
        ("mu1", npy(descr, &[s.n, s.d], &b(&s.mu1))),
        ("mu2", npy(descr, &[s.n, s.d], &b(&s.mu2))),
        (leak(names[0]), npy(descr, &[s.n, s.d, s.d], &b(&s.cov1))),
        (leak(names[1]), npy(descr, &[s.n, s.d, s.d], &b(&s.cov2))),
    ]
}

/// The values of an (N, k) NPY output.
fn read_npy_f64(path: &Path) -> Vec<f64> {
    let b = std::fs::read(path).unwrap();
    let len = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = String::from_utf8_lossy(&b[10..10 + len]);
    assert!(header.contains("'<f8'"), "{header}");
    b[10 + len..]
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn library(s: &Set, metrics: Metrics, on_invalid: OnInvalid) -> Vec<f64> {
    library_on(Backend::Cpu, s, metrics, on_invalid)
}

fn library_on(backend: Backend, s: &Set, metrics: Metrics, on_invalid: OnInvalid) -> Vec<f64> {
    let batch = MvnPairs {
        dims: s.d,
        mu1: &s.mu1,
        cov1: Covariance::Cov(&s.cov1),
        mu2: &s.mu2,
        cov2: Covariance::Cov(&s.cov2),
    };
    let request = Request::measures(metrics).with_on_invalid(on_invalid);
    let mut out = vec![0.0; s.n * request.values_per_pair()];
    Evaluator::new(backend)
        .unwrap()
        .evaluate(Batch::Mvn(batch), &request, &mut out)
        .unwrap();
    out
}

/// f64 NPZ (stored and deflated) → NPY in the order of --metrics equals the
/// library on the same arrays, bit for bit.
#[test]
fn npz_f64_equals_the_library_in_metric_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = set(300, 4);
    let want = library(&s, Metrics::ALL, OnInvalid::Error);
    for deflate in [false, true] {
        let input = dir.path().join(format!("pairs{deflate}.npz"));
        write_npz(&input, &members(&s, false, ["cov1", "cov2"]), deflate);
        let out = dir.path().join("out.npy");
        let o = run(&[
            "eval",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--precision",
            "f64",
            "--metrics",
            "wasserstein2,kl,cross_entropy",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let got = read_npy_f64(&out);
        assert_eq!(got.len(), s.n * 3);
        let k = Metric::COUNT;
        for (i, row) in got.chunks_exact(3).enumerate() {
            let lib = &want[i * k..(i + 1) * k];
            let pick = |m: Metric| lib[Metric::ALL.iter().position(|&x| x == m).unwrap()];
            assert_eq!(
                row[0].to_bits(),
                pick(Metric::Wasserstein2).to_bits(),
                "row {i}"
            );
            assert_eq!(row[1].to_bits(), pick(Metric::Kl).to_bits(), "row {i}");
            assert_eq!(
                row[2].to_bits(),
                pick(Metric::CrossEntropy).to_bits(),
                "row {i}"
            );
        }
    }
}

/// `--backend gpu`: the library's GPU path (the kernel, the CPU mirror for
/// the pairs it leaves), bit for bit, within the f64 bounds of the CPU.
#[test]
fn npz_on_the_gpu_equals_the_library_gpu_path() {
    if std::env::var("GAUSSDIV_REQUIRE_GPU").as_deref() != Ok("1")
        && Evaluator::new(Backend::Gpu).is_err()
    {
        eprintln!("SKIPPED: no GPU");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = set(200, 3);
    let want = library_on(Backend::Gpu, &s, Metrics::CE_KL, OnInvalid::Error);
    let cpu = library(&s, Metrics::CE_KL, OnInvalid::Error);
    let input = dir.path().join("pairs.npz");
    write_npz(&input, &members(&s, false, ["cov1", "cov2"]), false);
    let out = dir.path().join("out.npy");
    let o = run(&[
        "eval",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--precision",
        "f64",
        "--backend",
        "gpu",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let got = read_npy_f64(&out);
    assert_eq!(got.len(), want.len());
    for (i, ((g, w), c)) in got.iter().zip(&want).zip(&cpu).enumerate() {
        assert_eq!(g.to_bits(), w.to_bits(), "value {i}");
        assert!(
            (g - c).abs() <= 1e-12 * c.abs().max(3.0 * 1.4189),
            "value {i}: {g} {c}"
        );
    }
}

/// f32 arrays, the sides in other forms (scale_tril1 = chol(cov1) computed
/// here, precision2 read as such), CSV output: the file names the columns
/// and the KL values are those of the library on the same forms.
#[test]
fn npz_forms_and_csv_output() {
    let dir = tempfile::tempdir().unwrap();
    let s = set(50, 3);
    let input = dir.path().join("p.npz");
    write_npz(
        &input,
        &members(&s, true, ["scale_tril1", "precision2"]),
        false,
    );
    // scale_tril1 holds the covariance values, which are not lower triangular:
    // the first pair is invalid and named.
    let o = run(&["eval", input.to_str().unwrap(), "--backend", "cpu"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("invalid input at pair 0: scale_tril1"),
        "{}",
        stderr(&o)
    );
    // Lower triangles of the covariances are valid scale_tril factors.
    let mut tril = s.cov1.clone();
    for p in 0..s.n {
        for i in 0..s.d {
            for j in i + 1..s.d {
                tril[p * 9 + i * 3 + j] = 0.0;
            }
        }
    }
    let mut m = members(&s, true, ["scale_tril1", "precision2"]);
    m[2].1 = npy("<f4", &[s.n, 3, 3], &bytes_f32(&tril));
    write_npz(&input, &m, false);
    let out = dir.path().join("o.csv");
    let o = run(&["eval", input.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("cross_entropy,kl"));
    let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let (mu1, l1, mu2, p2) = (f(&s.mu1), f(&tril), f(&s.mu2), f(&s.cov2));
    let batch = MvnPairs {
        dims: 3,
        mu1: &mu1,
        cov1: Covariance::ScaleTril(&l1),
        mu2: &mu2,
        cov2: Covariance::Precision(&p2),
    };
    let request = Request::measures(Metrics::CE_KL);
    let mut want = vec![0f32; s.n * 2];
    Evaluator::new(Backend::Cpu)
        .unwrap()
        .evaluate(Batch::Mvn(batch), &request, &mut want)
        .unwrap();
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), s.n);
    for (i, line) in rows.iter().enumerate() {
        let v: Vec<f32> = line.split(',').map(|x| x.parse().unwrap()).collect();
        assert_eq!(v, want[i * 2..i * 2 + 2].to_vec(), "row {i}");
    }
}

/// A matrix that is not positive definite at pair 7: an error naming pair,
/// array and pivot (exit 2, no output file); with --on-invalid nan that row
/// is NaN and every other row is bit-identical to the library's.
#[test]
fn invalid_pair_is_named_or_nan() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = set(20, 2);
    // Σ2 of pair 7 = [[1, 2], [2, 1]]: indefinite.
    s.cov2[7 * 4..8 * 4].copy_from_slice(&[1.0, 2.0, 2.0, 1.0]);
    let input = dir.path().join("bad.npz");
    write_npz(&input, &members(&s, false, ["cov1", "cov2"]), true);
    let out = dir.path().join("o.npy");
    let o = run(&[
        "eval",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--precision",
        "f64",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("invalid input at pair 7: cov2"), "{e}");
    assert!(e.contains("pivot"), "{e}");
    assert!(!out.exists(), "no output after an error");
    let o = run(&[
        "eval",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--precision",
        "f64",
        "--on-invalid",
        "nan",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let got = read_npy_f64(&out);
    let want = library(&s, Metrics::CE_KL, OnInvalid::Nan);
    for (i, (g, w)) in got.chunks_exact(2).zip(want.chunks_exact(2)).enumerate() {
        if i == 7 {
            assert!(g.iter().all(|x| x.is_nan()), "{g:?}");
        } else {
            assert_eq!(g[0].to_bits(), w[0].to_bits());
            assert_eq!(g[1].to_bits(), w[1].to_bits());
        }
    }
}

/// Missing arrays, two forms for one side, mismatched shapes, options that
/// do not apply and --backend gpu: exit 2 with a message naming the problem.
#[test]
fn bad_archives_and_options_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let s = set(5, 3);
    let path = dir.path().join("x.npz");
    let p = path.to_str().unwrap();
    let check = |members: Vec<(&str, Vec<u8>)>, extra: &[&str], needle: &str| {
        write_npz(&path, &members, false);
        let mut args = vec!["eval", p];
        args.extend_from_slice(extra);
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{needle}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{needle}: {}", stderr(&o));
    };
    let full = || members(&s, false, ["cov1", "cov2"]);
    let mut m = full();
    m.remove(1);
    check(m, &[], "no array named mu2");
    let mut m = full();
    m.remove(3);
    check(m, &[], "no matrices for side 2");
    let mut m = full();
    m.push(("precision2", m[3].1.clone()));
    check(m, &[], "side 2 has more than one matrix array");
    let mut m = full();
    m[3].1 = npy("<f8", &[5, 3, 2], &bytes_f64(&vec![1.0; 30]));
    check(m, &[], "cov2 has shape (5, 3, 2)");
    let mut m = full();
    m[1].1 = npy("<f8", &[4, 3], &bytes_f64(&[0.0; 12]));
    check(m, &[], "mu2 has shape (4, 3)");
    let mut m = full();
    m[0].1 = npy("<i4", &[5, 3], &[0; 60]);
    check(m, &[], "unsupported NPY dtype");
    let mut m = full();
    m[2].1.truncate(200);
    check(m, &[], "truncated");
    check(full(), &["--param", "var"], "--param does not apply");
    std::fs::write(&path, b"not a zip").unwrap();
    let o = run(&["eval", p]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not an NPZ archive"), "{}", stderr(&o));
}

/// `bench --mvn 3` reports the documented JSON with an f32 worst error
/// within the bounds, a row per backend (gpu where there is one,
/// with its kernel-only rate).
#[test]
fn bench_mvn_json() {
    let gpu = std::env::var("GAUSSDIV_REQUIRE_GPU").as_deref() == Ok("1")
        || Evaluator::new(Backend::Gpu).is_ok();
    let backends = if gpu { "cpu,gpu" } else { "cpu" };
    let o = run(&[
        "bench",
        "--mvn",
        "3",
        "--pairs",
        "4000",
        "--runs",
        "2",
        "--json",
        "--backend",
        backends,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = String::from_utf8(o.stdout).unwrap();
    for key in [
        "\"backend\": \"cpu\"",
        "\"pairs\": 4000",
        "\"layout\": \"mvn d=3\"",
        "\"mpairs_per_s\"",
    ] {
        assert!(s.contains(key), "{key} missing in {s}");
    }
    if gpu {
        assert!(s.contains("\"backend\": \"gpu\""), "{s}");
        assert!(s.contains("% of cells on the kernel"), "{s}");
        // The GPU row's kernel-only rate (the device path), and only there.
        assert_eq!(s.matches("\"kernel_mpairs_per_s\"").count(), 1, "{s}");
    }
    let worst: Vec<f64> = s
        .split("\"worst_error\": ")
        .skip(1)
        .map(|r| {
            r.split(['}', ','])
                .next()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(f64::INFINITY)
        })
        .collect();
    assert_eq!(worst.len(), if gpu { 2 } else { 1 }, "{s}");
    for w in worst {
        assert!(w <= 2e-6, "worst error {w} in {s}");
    }
    let o = run(&[
        "bench",
        "--mvn",
        "100000",
        "--pairs",
        "1000",
        "--backend",
        "cpu",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("too large"), "{}", stderr(&o));
}

/// All ten measure names, for `--metrics`.
fn all_metrics() -> String {
    Metric::ALL
        .iter()
        .map(|m| m.name())
        .collect::<Vec<_>>()
        .join(",")
}

/// `eval PAIRS.npz --verify` on `backend`, f32 and f64 arrays: exit 0 and a
/// PASS report on stderr with a line per measure naming the worst row's
/// dimension and conditioning; the output is the same as without --verify.
fn verify_passes_on(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let s = set(150, 3);
    let metrics = all_metrics();
    for (f32_in, precision) in [(true, "f32"), (false, "f64")] {
        let input = dir.path().join(format!("p{precision}.npz"));
        write_npz(&input, &members(&s, f32_in, ["cov1", "cov2"]), false);
        let (out, plain) = (dir.path().join("v.npy"), dir.path().join("p.npy"));
        let args = |o: &Path| {
            vec![
                "eval".to_string(),
                input.to_str().unwrap().to_string(),
                "-o".into(),
                o.to_str().unwrap().to_string(),
                "--precision".into(),
                precision.into(),
                "--backend".into(),
                backend.into(),
                "--metrics".into(),
                metrics.clone(),
            ]
        };
        let mut with = args(&out);
        with.push("--verify".into());
        let o = run(&with.iter().map(String::as_str).collect::<Vec<_>>());
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(0), "{backend} {precision}: {e}");
        assert!(
            e.contains("verified 150 rows against the CPU f64 reference: PASS"),
            "{backend} {precision}: {e}"
        );
        for m in Metric::ALL {
            let line = e
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{} ", m.name())))
                .unwrap_or_else(|| panic!("{backend} {precision}: no line for {m}: {e}"));
            assert!(line.contains(" 0 rows over"), "{line}");
            assert!(line.contains(": d=3 cond="), "{line}");
        }
        let o = run(&args(&plain).iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(!stderr(&o).contains("verified"), "{}", stderr(&o));
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&plain).unwrap());
    }
}

#[test]
fn verify_passes_on_the_cpu() {
    verify_passes_on("cpu");
}

#[test]
fn verify_passes_on_the_gpu() {
    if std::env::var("GAUSSDIV_REQUIRE_GPU").as_deref() != Ok("1")
        && Evaluator::new(Backend::Gpu).is_err()
    {
        eprintln!("SKIPPED: no GPU");
        return;
    }
    verify_passes_on("gpu");
}

/// An invalid pair under `--on-invalid nan` is a NaN row, which --verify
/// does not count as a failure; without the policy it is still an error.
#[test]
fn verify_skips_nan_rows_of_invalid_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = set(20, 2);
    s.cov2[7 * 4..8 * 4].copy_from_slice(&[1.0, 2.0, 2.0, 1.0]);
    let input = dir.path().join("bad.npz");
    write_npz(&input, &members(&s, true, ["cov1", "cov2"]), false);
    let p = input.to_str().unwrap();
    let o = run(&["eval", p, "--verify", "--on-invalid", "nan"]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{e}");
    assert!(e.contains("verified 20 rows"), "{e}");
    assert!(e.contains("PASS"), "{e}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("NaN"));
    let o = run(&["eval", p, "--verify"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// The library check behind --verify: one KL value off by 1e-4 relative
/// (over the 2e-6 bound) fails the report, which names that row and measure;
/// the exact results pass.
#[test]
fn verify_mvn_names_a_corrupted_value() {
    let s = set(64, 4);
    let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let (mu1, c1, mu2, c2) = (f(&s.mu1), f(&s.cov1), f(&s.mu2), f(&s.cov2));
    let batch = MvnPairs {
        dims: s.d,
        mu1: &mu1,
        cov1: Covariance::Cov(&c1),
        mu2: &mu2,
        cov2: Covariance::Cov(&c2),
    };
    let request = Request::measures(Metrics::ALL);
    let k = request.values_per_pair();
    let mut out = vec![0f32; s.n * k];
    Evaluator::new(Backend::Cpu)
        .unwrap()
        .evaluate(Batch::Mvn(batch), &request, &mut out)
        .unwrap();
    let tol = gaussdiv::Tolerance::MVN_F32;
    let report = gaussdiv::verify_mvn(batch, &request, &out, tol).unwrap();
    assert!(report.passed(), "{report}");
    assert!(report.worst_ratio() <= 1.0);
    let kl = Metric::ALL.iter().position(|&m| m == Metric::Kl).unwrap();
    out[17 * k + kl] *= 1.0 + 1e-4;
    let report = gaussdiv::verify_mvn(batch, &request, &out, tol).unwrap();
    assert!(!report.passed(), "{report}");
    let r = report.metric(Metric::Kl).unwrap();
    assert_eq!(r.failures, 1, "{report}");
    let w = r.worst.unwrap();
    assert_eq!(w.index, 17);
    assert!(w.error > 5e-5 && w.error < 2e-4, "{w:?}");
    assert_eq!(w.mvn.unwrap().dims, 4);
    for m in Metric::ALL.into_iter().filter(|&m| m != Metric::Kl) {
        assert_eq!(report.metric(m).unwrap().failures, 0, "{m}: {report}");
    }
    let text = report.to_string();
    assert!(text.contains("FAIL"), "{text}");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("kl "))
        .unwrap();
    assert!(line.contains("1 rows over) at row 17"), "{line}");
    // The same through verify() on Batch::Mvn.
    let again = gaussdiv::verify(Batch::Mvn(batch), &request, &out, tol).unwrap();
    assert_eq!(again, report);
}
