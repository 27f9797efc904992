//! The `gaussdiv` tool from outside: CSV in, CSV out, exit codes.
#[path = "../../gaussdiv/tests/common/mod.rs"]
mod common;
use common::*;
use gaussdiv::Precision;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gaussdiv"));
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        c.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run gaussdiv")
}

fn run_stdin(args: &[&str], input: &str) -> Output {
    run_stdin_env(args, input, &[])
}

fn run_stdin_env(args: &[&str], input: &str, env: &[(&str, &str)]) -> Output {
    let mut child = bin()
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The tool may exit (usage error) before reading: a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    child.wait_with_output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("gaussdiv-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn entries(&self) -> Vec<String> {
        let mut v: Vec<_> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Header and rows of the tool's CSV output; values parsed in f32 (the
/// shortest text of an f32 is that f32, not the f64 of the same decimal).
fn parse_output(text: &str) -> (Vec<String>, Vec<Vec<f64>>) {
    parse_output_as(text, Precision::F32)
}

fn parse_output_as(text: &str, precision: Precision) -> (Vec<String>, Vec<Vec<f64>>) {
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::to_string)
        .collect();
    let parse = |v: &str| match precision {
        Precision::F32 => f64::from(v.parse::<f32>().unwrap()),
        Precision::F64 => v.parse::<f64>().unwrap(),
    };
    let rows = lines.map(|l| l.split(',').map(parse).collect()).collect();
    (header, rows)
}

fn golden_via_cli(extra: &[&str], label: &str, tol: f64, precision: Precision) {
    let dir = TempDir::new(label);
    let out = dir.path("out.csv");
    let golden_csv = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../gaussdiv/tests/data/golden_public.csv"
    );
    let mut args = vec![
        "eval",
        golden_csv,
        "-o",
        out.to_str().unwrap(),
        "--metrics",
        "kl,cross_entropy,entropy",
        "--verify",
    ];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("PASS"), "{}", stderr(&o));
    let (header, rows) = parse_output_as(&std::fs::read_to_string(&out).unwrap(), precision);
    assert_eq!(header, ["kl", "cross_entropy", "entropy"]);
    let truth = golden();
    assert_eq!(rows.len(), truth.len());
    let got: Vec<[f64; 3]> = rows.iter().map(|r| [r[1], r[0], r[2]]).collect();
    assert_golden(label, &truth, &got, tol, precision);
}

#[test]
fn golden_file_through_the_tool_cpu_f32() {
    golden_via_cli(&["--backend", "cpu"], "tool CPU f32", 1e-6, Precision::F32);
}

#[test]
fn golden_file_through_the_tool_f64() {
    golden_via_cli(
        &["--precision", "f64"],
        "tool CPU f64",
        1e-14,
        Precision::F64,
    );
}

#[test]
fn golden_file_through_the_tool_gpu_f64() {
    let Some(gpu) = gpu() else { return };
    if !gpu.gpu_info().is_some_and(|i| i.supports_f64) {
        eprintln!("SKIPPED: the adapter lacks SHADER_F64/SHADER_INT64");
        return;
    }
    golden_via_cli(
        &["--precision", "f64", "--backend", "gpu"],
        "tool GPU f64",
        1e-14,
        Precision::F64,
    );
}

#[test]
fn gpu_f64_without_the_features_exits_3_naming_them() {
    let input = "mu1,sigma1,mu2,sigma2\n0,1,1,2\n";
    // Mesa's GL adapter (llvmpipe through EGL) has neither SHADER_F64 nor SHADER_INT64.
    let gl = [("WGPU_BACKEND", "gl")];
    let o = run_stdin_env(
        &["eval", "--backend", "gpu", "--precision", "f64"],
        input,
        &gl,
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let message = stderr(&o);
    if message.contains("no GPU adapter") {
        eprintln!("SKIPPED: no GL adapter here: {message}");
        return;
    }
    assert!(
        message.contains("SHADER_F64") && message.contains("SHADER_INT64"),
        "{message}"
    );
    assert!(o.stdout.is_empty(), "no partial output");
    // `auto` and `cpu` run f64 on the CPU whatever the adapter.
    for backend in ["auto", "cpu"] {
        let o = run_stdin_env(
            &["eval", "--backend", backend, "--precision", "f64"],
            input,
            &gl,
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
}

#[test]
fn golden_file_through_the_tool_gpu_f32() {
    if gpu().is_none() {
        return;
    }
    golden_via_cli(&["--backend", "gpu"], "tool GPU f32", 2e-6, Precision::F32);
}

#[test]
fn stdin_to_stdout_any_column_order_extra_columns() {
    let input = "id,sigma2,mu1,note,sigma1,mu2\n7,2,0,x,1,1\n8,1,0.5,y,1,0.5\n";
    let o = run_stdin(&["eval", "--backend", "cpu"], input);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let (header, rows) = parse_output(&text);
    assert_eq!(header, ["cross_entropy", "kl"]);
    let kl = 0.5 * (0.25f64 + 0.25 - 0.25f64.ln() - 1.0);
    assert!((rows[0][1] - kl).abs() < 1e-6 * kl);
    assert_eq!(rows[1][1], 0.0);
    // `-` is standard input too, and values round-trip exactly.
    let o2 = run_stdin(&["eval", "-", "--backend", "cpu"], input);
    assert_eq!(String::from_utf8(o2.stdout).unwrap(), text);
    let p = gaussdiv::GaussianPair::<f32>::new(0.0, 1.0, 1.0, 2.0);
    let d = divergences(cpu(), &[p]).unwrap()[0];
    assert_eq!(rows[0][1] as f32, d.kl);
    assert_eq!(rows[0][0] as f32, d.cross_entropy);
}

#[test]
fn malformed_value_names_row_column_value_and_leaves_no_output() {
    let dir = TempDir::new("malformed");
    let input = dir.path("in.csv");
    std::fs::write(&input, "mu1,sigma1,mu2,sigma2\n0,1,0,1\n0,1,abc,1\n").unwrap();
    let out = dir.path("out.csv");
    let o = run(&[
        "eval",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--backend",
        "cpu",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("line 3") && e.contains("mu2") && e.contains("abc"),
        "{e}"
    );
    assert_eq!(
        dir.entries(),
        ["in.csv"],
        "no output and no temporary file left"
    );
}

#[test]
fn nonpositive_sigma_error_and_nan_policies() {
    let dir = TempDir::new("sigma");
    let input = dir.path("in.csv");
    std::fs::write(
        &input,
        "mu1,sigma1,mu2,sigma2\n0,1,0,2\n0,-1,0,1\n1,1,2,1\n",
    )
    .unwrap();
    let out = dir.path("out.csv");
    let o = run(&[
        "eval",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--backend",
        "cpu",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("line 3") && e.contains("sigma1") && e.contains("-1"),
        "{e}"
    );
    assert!(!out.exists());
    for backend in ["cpu", "auto"] {
        let o = run(&[
            "eval",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--on-invalid",
            "nan",
            "--backend",
            backend,
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let (_, rows) = parse_output(&std::fs::read_to_string(&out).unwrap());
        assert!(rows[1].iter().all(|v| v.is_nan()));
        assert!(rows[0].iter().chain(&rows[2]).all(|v| v.is_finite()));
    }
}

#[test]
fn header_only_empty_and_missing_columns() {
    let o = run_stdin(&["eval", "--backend", "cpu"], "mu1,sigma1,mu2,sigma2\n");
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(String::from_utf8(o.stdout).unwrap(), "cross_entropy,kl\n");
    let o = run_stdin(&["eval", "--backend", "cpu"], "");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("empty"), "{}", stderr(&o));
    let o = run_stdin(&["eval", "--backend", "cpu"], "mu1,sigma1,mu2\n1,2,3\n");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("sigma2"), "{}", stderr(&o));
}

#[test]
fn bad_usage_exits_2() {
    let o = run_stdin(
        &["eval", "--metrics", "kl,bogus"],
        "mu1,sigma1,mu2,sigma2\n0,1,0,1\n",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bogus"));
    assert_eq!(run(&["eval", "--backend", "tpu"]).status.code(), Some(2));
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
    let o = run(&["eval", "/nonexistent/in.csv"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent/in.csv"));
}

#[test]
fn no_adapter_gpu_exits_3_and_auto_falls_back() {
    let input = "mu1,sigma1,mu2,sigma2\n0,1,1,2\n";
    let no_adapter = [("WGPU_ADAPTER_NAME", "no-such-adapter-anywhere")];
    let o = run_stdin_env(&["eval", "--backend", "gpu"], input, &no_adapter);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no-such-adapter-anywhere"),
        "{}",
        stderr(&o)
    );

    let o = run_stdin_env(&["eval", "--backend", "auto"], input, &no_adapter);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("falling back to the CPU"),
        "{}",
        stderr(&o)
    );
    assert!(String::from_utf8(o.stdout)
        .unwrap()
        .starts_with("cross_entropy,kl\n"));
}

#[test]
fn write_error_to_dev_full_exits_2() {
    if !Path::new("/dev/full").exists() {
        eprintln!("SKIPPED: no /dev/full");
        return;
    }
    let golden = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../gaussdiv/tests/data/golden_public.csv"
    );
    let o = run(&["eval", golden, "-o", "/dev/full", "--backend", "cpu"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("/dev/full"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"));
    let meta = std::fs::metadata("/dev/full").unwrap();
    assert!(!meta.is_file(), "/dev/full must not have been replaced");
}

#[test]
fn verify_failure_would_exit_1() {
    // The tool's exit 1 path: a result out of tolerance. Shown here through the
    // library's report (the tool cannot be made to compute wrongly from outside).
    let pairs = [gaussdiv::GaussianPair::<f32>::new(0.0, 1.0, 1.0, 2.0)];
    let mut out = divergences(cpu(), &pairs).unwrap();
    out[0].kl *= 1.0 + 1e-5;
    let r = gaussdiv::verify(
        gaussdiv::Batch::Pairs(&pairs),
        &gaussdiv::Request::default(),
        bytemuck::cast_slice(&out),
        gaussdiv::Tolerance::CPU_F32,
    )
    .unwrap();
    assert!(!r.passed());
    assert_eq!(r.metric(gaussdiv::Metric::Kl).unwrap().failures, 1);
}

#[test]
fn info_lists_adapters() {
    let o = run(&["info"]);
    assert_eq!(o.status.code(), Some(0));
    let s = String::from_utf8(o.stdout).unwrap();
    assert!(s.contains("adapters found"));
    if gpu().is_some() {
        assert!(s.contains("chosen: ") && s.contains("SHADER_F64"), "{s}");
    }
}

/// A version-1.0 NPY file of shape (rows, cols).
fn write_npy(path: &Path, descr: &str, fortran: bool, shape: &str, data: &[u8]) {
    let dict = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    let total = (10 + dict.len() + 1).next_multiple_of(64);
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    h.extend_from_slice(&((total - 10) as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.resize(total - 1, b' ');
    h.push(b'\n');
    h.extend_from_slice(data);
    std::fs::write(path, h).unwrap();
}

/// (descr, shape, data bytes) of an NPY file.
fn read_npy(path: &Path) -> (String, String, Vec<u8>) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
    let len = u16::from_le_bytes([b[8], b[9]]) as usize;
    assert_eq!((10 + len) % 64, 0, "header padded to 64 bytes");
    let dict = String::from_utf8(b[10..10 + len].to_vec()).unwrap();
    let descr = dict
        .split("'descr': '")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap()
        .to_string();
    let shape = dict
        .split("'shape': ")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .to_string()
        + ")";
    (descr, shape, b[10 + len..].to_vec())
}

#[test]
fn npy_f32_in_and_out_equals_the_library() {
    let dir = TempDir::new("npy32");
    let pairs = random_pairs(300_000, 17);
    let input = dir.path("in.npy");
    write_npy(
        &input,
        "<f4",
        false,
        "(300000, 4)",
        bytemuck::cast_slice(&pairs),
    );
    let out = dir.path("out.npy");
    let o = run(&[
        "eval",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--backend",
        "cpu",
        "--metrics",
        "kl,cross_entropy",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (descr, shape, data) = read_npy(&out);
    assert_eq!(descr, "<f4");
    assert_eq!(shape, "(300000, 2)");
    #[cfg(unix)]
    {
        // The output gets the permissions of an ordinary new file, not the temporary file's 0600.
        use std::os::unix::fs::PermissionsExt;
        let plain = dir.path("plain");
        std::fs::write(&plain, b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&out), mode(&plain));
    }
    let vals: &[f32] = bytemuck::cast_slice(&data);
    let want = divergences(cpu(), &pairs).unwrap();
    for (i, d) in want.iter().enumerate() {
        assert_eq!(vals[2 * i].to_bits(), d.kl.to_bits());
        assert_eq!(vals[2 * i + 1].to_bits(), d.cross_entropy.to_bits());
    }
    // NPY in, CSV out, same numbers
    let csv = dir.path("out.csv");
    let o = run(&[
        "eval",
        input.to_str().unwrap(),
        "-o",
        csv.to_str().unwrap(),
        "--backend",
        "cpu",
        "--metrics",
        "kl,cross_entropy",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (_, rows) = parse_output(&std::fs::read_to_string(&csv).unwrap());
    assert_eq!(rows.len(), 300_000);
    assert!(rows.iter().zip(&want).all(|(r, d)| r[0] as f32 == d.kl));
}

#[test]
fn npy_gpu_path_and_f64() {
    let dir = TempDir::new("npy64");
    let pairs = random_pairs(5000, 3);
    let wide: Vec<f64> = pairs
        .iter()
        .flat_map(|p| [p.mu1, p.sigma1, p.mu2, p.sigma2].map(f64::from))
        .collect();
    let input = dir.path("in.npy");
    write_npy(
        &input,
        "<f8",
        false,
        "(5000, 4)",
        bytemuck::cast_slice(&wide),
    );
    // f64 in, f64 out
    let out = dir.path("out.npy");
    let o = run(&[
        "eval",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--precision",
        "f64",
        "--metrics",
        "cross_entropy,kl,entropy",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (descr, shape, data) = read_npy(&out);
    assert_eq!((descr.as_str(), shape.as_str()), ("<f8", "(5000, 3)"));
    let vals: &[f64] = bytemuck::cast_slice(&data);
    let wide: Vec<gaussdiv::GaussianPair64> = pairs.iter().map(|p| p.to_f64()).collect();
    let want = divergences64(cpu(), &wide).unwrap();
    for (i, d) in want.iter().enumerate() {
        assert_eq!(vals[3 * i..3 * i + 3], [d.cross_entropy, d.kl, d.entropy]);
    }
    // f64 in, f32 evaluation on the GPU
    if gpu().is_some() {
        let out32 = dir.path("out32.npy");
        let o = run(&[
            "eval",
            input.to_str().unwrap(),
            "-o",
            out32.to_str().unwrap(),
            "--backend",
            "gpu",
            "--verify",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let (descr, shape, _) = read_npy(&out32);
        assert_eq!((descr.as_str(), shape.as_str()), ("<f4", "(5000, 2)"));
    }
}

#[test]
fn npy_bad_inputs_exit_2_and_leave_nothing() {
    let dir = TempDir::new("npybad");
    let out = dir.path("out.npy");
    let good: Vec<f32> = vec![0.0, 1.0, 0.0, 1.0, 0.0, -3.0, 1.0, 1.0];
    type Case<'a> = (&'a str, &'a str, bool, &'a str, Vec<u8>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "shape.npy",
            "<f4",
            false,
            "(4, 2)",
            bytemuck::cast_slice(&good).to_vec(),
            "shape (N, 4)",
        ),
        (
            "fortran.npy",
            "<f4",
            true,
            "(2, 4)",
            bytemuck::cast_slice(&good).to_vec(),
            "Fortran",
        ),
        (
            "dtype.npy",
            "<i4",
            false,
            "(2, 4)",
            bytemuck::cast_slice(&good).to_vec(),
            "dtype",
        ),
        (
            "trunc.npy",
            "<f4",
            false,
            "(3, 4)",
            bytemuck::cast_slice(&good).to_vec(),
            "truncated",
        ),
        (
            "invalid.npy",
            "<f4",
            false,
            "(2, 4)",
            bytemuck::cast_slice(&good).to_vec(),
            "row 1",
        ),
    ];
    for (name, descr, fortran, shape, data, expect) in cases {
        let p = dir.path(name);
        write_npy(&p, descr, fortran, shape, &data);
        let o = run(&[
            "eval",
            p.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--backend",
            "cpu",
        ]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains(expect), "{name}: {}", stderr(&o));
        if name == "invalid.npy" {
            assert!(
                stderr(&o).contains("sigma1") && stderr(&o).contains("-3"),
                "{}",
                stderr(&o)
            );
        }
        assert!(!out.exists(), "{name}: no output");
    }
    std::fs::write(dir.path("junk.npy"), b"not an npy file at all").unwrap();
    let o = run(&[
        "eval",
        dir.path("junk.npy").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!out.exists());
    let leftovers: Vec<_> = dir
        .entries()
        .into_iter()
        .filter(|e| e.contains("gaussdiv"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn progress_always_reports_rows() {
    let golden_csv = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../gaussdiv/tests/data/golden_public.csv"
    );
    let o = run(&[
        "eval",
        golden_csv,
        "--backend",
        "cpu",
        "--progress",
        "always",
        "-o",
        "/dev/null",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("2000 rows"), "{}", stderr(&o));
    let o = run(&[
        "eval",
        golden_csv,
        "--backend",
        "cpu",
        "--progress",
        "never",
        "-o",
        "/dev/null",
    ]);
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}

#[test]
fn interrupted_run_leaves_no_output() {
    for signal in ["-INT", "-TERM"] {
        interrupted_by(signal);
    }
}

fn interrupted_by(signal: &str) {
    let dir = TempDir::new(&format!("signal{signal}"));
    let out = dir.path("out.csv");
    let mut child = bin()
        .args(["eval", "-", "-o", out.to_str().unwrap(), "--backend", "cpu"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"mu1,sigma1,mu2,sigma2\n").unwrap();
    for _ in 0..2000 {
        stdin.write_all(b"0,1,1,2\n").unwrap();
    }
    stdin.flush().unwrap();
    // wait until the temporary file exists, then interrupt
    for _ in 0..200 {
        if dir.entries().iter().any(|e| e.starts_with(".gaussdiv-")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let o = child.wait_with_output().unwrap();
    drop(stdin);
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(dir.entries().is_empty(), "left behind: {:?}", dir.entries());
}

#[test]
fn hostile_inputs_exit_0_or_2_with_a_message_within_seconds() {
    let dir = TempDir::new("hostile");
    let mut rng = Rng(0x5eed);
    let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..12 {
        let len = (rng.next_u64() % 4096) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        inputs.push((format!("random{i}.csv"), bytes.clone()));
        inputs.push((format!("random{i}.npy"), bytes));
    }
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    npy.extend_from_slice(&u16::MAX.to_le_bytes());
    inputs.push(("huge_header.npy".into(), npy));
    inputs.push(("magic_only.npy".into(), b"\x93NUMPY".to_vec()));
    inputs.push((
        "huge_rows.npy".into(),
        b"\x93NUMPY\x01\x00\x46\x00{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999, 4), }    \n".to_vec(),
    ));
    inputs.push((
        "nul.csv".into(),
        b"mu1,sigma1,mu2,sigma2\n\0,\0,\0,\0\n".to_vec(),
    ));
    inputs.push((
        "long_line.csv".into(),
        format!("mu1,sigma1,mu2,sigma2\n{}\n", "9".repeat(1 << 20)).into_bytes(),
    ));
    inputs.push((
        "quotes.csv".into(),
        b"mu1,sigma1,mu2,sigma2\n\"1,2\",\"3\n".to_vec(),
    ));
    inputs.push((
        "ragged.csv".into(),
        b"mu1,sigma1,mu2,sigma2\n1,2\n1,2,3,4,5\n".to_vec(),
    ));
    inputs.push((
        "bom.csv".into(),
        b"\xef\xbb\xbfmu1,sigma1,mu2,sigma2\n0,1,0,1\n".to_vec(),
    ));
    for (name, bytes) in &inputs {
        let path = dir.path(name);
        std::fs::write(&path, bytes).unwrap();
        let out = dir.path("out.csv");
        let t = std::time::Instant::now();
        let o = run(&[
            "eval",
            path.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--backend",
            "cpu",
        ]);
        let code = o.status.code();
        assert!(
            code == Some(0) || code == Some(2),
            "{name}: exit {code:?}: {}",
            stderr(&o)
        );
        if code == Some(2) {
            assert!(stderr(&o).contains("error"), "{name}: no message");
            assert!(!out.exists(), "{name}: output left behind");
        }
        assert!(!stderr(&o).contains("panicked"), "{name}: {}", stderr(&o));
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "{name}: took {:?}",
            t.elapsed()
        );
        let _ = std::fs::remove_file(&out);
    }
}
/// Every measure in every parameterisation through the tool, columns in the
/// user's order, against the 50-digit truth of the golden measure files.
#[test]
fn every_measure_and_parameterisation_through_the_tool() {
    use gaussdiv::verify::measure_error;
    use gaussdiv::Metric;
    // A user order that is not the canonical one.
    let order = [
        "wasserstein2",
        "kl",
        "hellinger",
        "cross_entropy",
        "entropy_q",
        "bhattacharyya_coefficient",
        "reverse_kl",
        "entropy",
        "jeffreys",
        "bhattacharyya",
    ];
    let list = order.join(",");
    for param in ["std", "var", "logstd", "logvar", "precision"] {
        let file = format!(
            "{}/../gaussdiv/tests/data/golden_measures_{param}.csv",
            env!("CARGO_MANIFEST_DIR")
        );
        let backends: &[&str] = if gpu().is_some() {
            &["cpu", "gpu"]
        } else {
            &["cpu"]
        };
        for &backend in backends {
            let out = run(&[
                "eval",
                &file,
                "--param",
                param,
                "--metrics",
                &list,
                "--backend",
                backend,
                "--verify",
            ]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{param} {backend}: {}",
                stderr(&out)
            );
            let (header, rows) = parse_output(&String::from_utf8_lossy(&out.stdout));
            assert_eq!(header, order);
            // Truth from the golden file (same row order).
            let truth: Vec<[f64; Metric::COUNT]> =
                measures_truth(param).into_iter().map(|(_, t)| t).collect();
            assert_eq!(rows.len(), truth.len());
            let mut worst = 0f64;
            for (r, t) in rows.iter().zip(&truth) {
                for (v, name) in r.iter().zip(order) {
                    let m = name.parse::<Metric>().unwrap();
                    worst = worst.max(measure_error(m, *v, t, Precision::F32));
                }
            }
            println!("{param} {backend}: worst error {worst:.2e}");
            let bound = if backend == "cpu" { 1e-6 } else { 2e-6 };
            assert!(worst <= bound, "{param} {backend}: {worst:e}");
        }
    }
}

/// `--precision f64 --backend gpu`: every measure in every parameterisation
/// (the f64 kernel), columns in the user's order, against the 50-digit truth
/// of the golden measure files at 1e-14.
#[test]
fn every_measure_and_parameterisation_through_the_tool_gpu_f64() {
    use gaussdiv::verify::measure_error;
    use gaussdiv::Metric;
    let Some(gpu) = gpu() else { return };
    if !gpu.gpu_info().is_some_and(|i| i.supports_f64) {
        eprintln!("SKIPPED: the adapter lacks SHADER_F64/SHADER_INT64");
        return;
    }
    let order = [
        "hellinger",
        "kl",
        "wasserstein2",
        "cross_entropy",
        "bhattacharyya_coefficient",
        "entropy_q",
        "jeffreys",
        "reverse_kl",
        "bhattacharyya",
        "entropy",
    ];
    let list = order.join(",");
    let dir = TempDir::new("gpu-f64-measures");
    for param in ["std", "var", "logstd", "logvar", "precision"] {
        // The golden inputs are f32 values: written out exactly in f64 (the
        // file's decimals are the shortest f32 text, another f64).
        let mut csv = String::from("mu1,a1,mu2,a2\n");
        let mut truth: Vec<[f64; Metric::COUNT]> = Vec::new();
        for (p, t) in measures_truth(param) {
            let v = [p.mu1, p.sigma1, p.mu2, p.sigma2].map(|x| format!("{:?}", f64::from(x)));
            csv.push_str(&v.join(","));
            csv.push('\n');
            truth.push(t);
        }
        let input = dir.path(&format!("{param}.csv"));
        std::fs::write(&input, csv).unwrap();
        let out = run(&[
            "eval",
            input.to_str().unwrap(),
            "--param",
            param,
            "--metrics",
            &list,
            "--precision",
            "f64",
            "--backend",
            "gpu",
            "--verify",
        ]);
        assert_eq!(out.status.code(), Some(0), "{param}: {}", stderr(&out));
        assert!(stderr(&out).contains("PASS"), "{}", stderr(&out));
        let (header, rows) = parse_output_as(&String::from_utf8_lossy(&out.stdout), Precision::F64);
        assert_eq!(header, order);
        assert_eq!(rows.len(), truth.len());
        let mut worst = 0f64;
        for (r, t) in rows.iter().zip(&truth) {
            for (v, name) in r.iter().zip(order) {
                let m = name.parse::<Metric>().unwrap();
                worst = worst.max(measure_error(m, *v, t, Precision::F64));
            }
        }
        println!("{param} gpu f64: worst error {worst:.2e}");
        assert!(worst <= 1e-14, "{param} gpu f64: {worst:e}");
    }
}

#[test]
fn param_column_names_validation_and_f64() {
    // Column names follow --param (a1/a2 also accepted); errors name them.
    let ok = run_stdin(
        &["eval", "--param", "logvar", "--metrics", "kl,entropy_q"],
        "logvar2,mu1,logvar1,mu2\n0,0,0,1\n",
    );
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let (h, rows) = parse_output(&String::from_utf8_lossy(&ok.stdout));
    assert_eq!(h, ["kl", "entropy_q"]);
    assert!((rows[0][0] - 0.5).abs() < 1e-7, "{rows:?}");
    let generic = run_stdin(
        &["eval", "--param", "precision", "--metrics", "wasserstein2"],
        "mu1,a1,mu2,a2\n0,1,0,0.25\n",
    );
    assert_eq!(generic.status.code(), Some(0), "{}", stderr(&generic));
    let (_, rows) = parse_output(&String::from_utf8_lossy(&generic.stdout));
    assert_eq!(rows[0][0], 1.0); // sigma 1 vs 2
    let missing = run_stdin(
        &["eval", "--param", "var"],
        "mu1,sigma1,mu2,sigma2\n0,1,0,1\n",
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("var1, var2"),
        "{}",
        stderr(&missing)
    );
    let bad = run_stdin(
        &["eval", "--param", "precision"],
        "mu1,precision1,mu2,precision2\n0,1,0,1\n0,1,0,-3\n",
    );
    assert_eq!(bad.status.code(), Some(2));
    let e = stderr(&bad);
    assert!(
        e.contains("precision2") && e.contains("-3") && e.contains("a precision must be > 0"),
        "{e}"
    );
    let inf = run_stdin(
        &["eval", "--param", "logstd"],
        "mu1,logstd1,mu2,logstd2\n0,inf,0,1\n",
    );
    assert_eq!(inf.status.code(), Some(2));
    assert!(stderr(&inf).contains("logstd1"), "{}", stderr(&inf));
    // NaN policy: the bad row is NaN in every column, the others are computed.
    let nan = run_stdin(
        &[
            "eval",
            "--param",
            "var",
            "--on-invalid",
            "nan",
            "--metrics",
            "hellinger,jeffreys",
        ],
        "mu1,var1,mu2,var2\n0,1,1,1\n0,0,1,1\n",
    );
    assert_eq!(nan.status.code(), Some(0), "{}", stderr(&nan));
    let (_, rows) = parse_output(&String::from_utf8_lossy(&nan.stdout));
    assert!(rows[0].iter().all(|v| v.is_finite()) && rows[1].iter().all(|v| v.is_nan()));
    // f64 with a parameterisation, verified.
    let f64out = run_stdin(
        &[
            "eval",
            "--param",
            "logstd",
            "--precision",
            "f64",
            "--metrics",
            "bhattacharyya_coefficient,kl",
            "--verify",
        ],
        "mu1,logstd1,mu2,logstd2\n0,0,1,0.6931471805599453\n",
    );
    assert_eq!(f64out.status.code(), Some(0), "{}", stderr(&f64out));
    let (_, rows) = parse_output_as(&String::from_utf8_lossy(&f64out.stdout), Precision::F64);
    // KL(N(0,1) || N(1,4)) = (1 + 1)/8 + ln 2 - 1/2.
    let kl = 0.25 + std::f64::consts::LN_2 - 0.5;
    assert!((rows[0][1] - kl).abs() < 1e-15, "{rows:?}");
    // Unknown names are usage errors listing the valid ones.
    let unknown = run_stdin(
        &["eval", "--metrics", "kl,jensen_shannon"],
        "mu1,sigma1,mu2,sigma2\n",
    );
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("wasserstein2"),
        "{}",
        stderr(&unknown)
    );
    let unknown_param = run_stdin(&["eval", "--param", "scale"], "");
    assert_eq!(unknown_param.status.code(), Some(2));
}

#[test]
fn pairwise_tool_matrix_csv_and_npy() {
    let dir = TempDir::new("pairwise");
    let p = dir.path("p.csv");
    let q = dir.path("q.csv");
    std::fs::write(&p, "mu,sigma\n0,1\n1,2\n0.5,0.5\n").unwrap();
    std::fs::write(&q, "id,sigma,mu\nx,1,0\ny,3,2\n").unwrap();
    let o = run(&[
        "pairwise",
        p.to_str().unwrap(),
        q.to_str().unwrap(),
        "--metric",
        "kl",
        "--backend",
        "cpu",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (header, rows) = parse_output(&String::from_utf8(o.stdout).unwrap());
    assert_eq!(header, ["q0", "q1"]);
    assert_eq!(rows.len(), 3);
    for (i, (mu1, s1)) in [(0.0f32, 1.0f32), (1.0, 2.0), (0.5, 0.5)]
        .iter()
        .enumerate()
    {
        for (j, (mu2, s2)) in [(0.0f32, 1.0f32), (2.0, 3.0)].iter().enumerate() {
            let d = divergences(cpu(), &[gaussdiv::GaussianPair::new(*mu1, *s1, *mu2, *s2)])
                .unwrap()[0];
            assert_eq!(rows[i][j] as f32, d.kl, "({i}, {j})");
        }
    }
    let out = dir.path("m.npy");
    let o = run(&[
        "pairwise",
        p.to_str().unwrap(),
        q.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--metric",
        "wasserstein2",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (descr, shape, data) = read_npy(&out);
    assert_eq!((descr.as_str(), shape.as_str()), ("<f4", "(3, 2)"));
    let w: &[f32] = bytemuck::cast_slice(&data);
    assert!((w[1] - (4.0f32 + 4.0).sqrt()).abs() < 1e-6, "{w:?}");
    // an invalid row is named; nothing is written
    std::fs::write(&q, "mu,sigma\n0,1\n2,-3\n").unwrap();
    let bad = dir.path("bad.npy");
    let o = run(&[
        "pairwise",
        p.to_str().unwrap(),
        q.to_str().unwrap(),
        "-o",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("row 2 of Q"), "{}", stderr(&o));
    assert!(!bad.exists());
}

/// `--gradients`: four columns per measure in the user's order, equal to the
/// library's; every parameterisation; `--verify` passes; measures without
/// gradients are a usage error (exit 2).
#[test]
fn gradients_through_the_tool() {
    let input = "mu1,a1,mu2,a2\n0,1,1,2\n0.5,0.3,0.2,0.4\n-1e3,2.5,3,0.25\n";
    let pairs = [
        gaussdiv::GaussianPair::new(0.0, 1.0, 1.0, 2.0),
        gaussdiv::GaussianPair::new(0.5, 0.3, 0.2, 0.4),
        gaussdiv::GaussianPair::new(-1e3, 2.5, 3.0, 0.25),
    ];
    let mut backends = vec!["cpu"];
    if common::gpu().is_some() {
        backends.push("gpu");
    }
    for backend in backends {
        for param in gaussdiv::Param::ALL {
            let o = run_stdin(
                &[
                    "eval",
                    "--gradients",
                    "--metrics",
                    "kl,cross_entropy",
                    "--param",
                    param.name(),
                    "--backend",
                    backend,
                    "--verify",
                ],
                input,
            );
            assert!(o.status.success(), "{backend} {param}: {}", stderr(&o));
            assert!(stderr(&o).contains("PASS"), "{}", stderr(&o));
            let (header, rows) = parse_output(&String::from_utf8_lossy(&o.stdout));
            assert_eq!(
                header,
                [
                    "dkl_dmu1", "dkl_da1", "dkl_dmu2", "dkl_da2", "dce_dmu1", "dce_da1",
                    "dce_dmu2", "dce_da2"
                ]
            );
            let mut want = vec![0f32; 3 * 8];
            cpu()
                .evaluate(
                    gaussdiv::Batch::Pairs(&pairs),
                    &gaussdiv::Request::gradients(gaussdiv::Metrics::CE_KL).with_param(param),
                    &mut want,
                )
                .unwrap();
            for (i, row) in rows.iter().enumerate() {
                // Library order: cross-entropy first; the tool's: the user's (kl first).
                let lib: Vec<f64> = want[i * 8 + 4..i * 8 + 8]
                    .iter()
                    .chain(&want[i * 8..i * 8 + 4])
                    .map(|&v| f64::from(v))
                    .collect();
                assert_eq!(row, &lib, "{backend} {param} row {i}");
            }
        }
    }
    let o = run_stdin(&["eval", "--gradients", "--metrics", "hellinger"], input);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cross_entropy and kl only"),
        "{}",
        stderr(&o)
    );
}

/// `--dims D`: every D rows are one diagonal pair; the output equals
/// `layout::diagonal_with`, CPU and GPU, across the reader's chunk boundary
/// (1 Mi rows is not a multiple of D = 3); a row count that is not a multiple
/// of D is an error that leaves no output.
#[test]
fn diagonal_dims_through_the_tool() {
    let dir = TempDir::new("dims");
    let pairs = random_pairs(3 * 400_000, 31);
    let mut csv = String::from("mu1,sigma1,mu2,sigma2\n");
    for p in &pairs {
        csv.push_str(&format!("{},{},{},{}\n", p.mu1, p.sigma1, p.mu2, p.sigma2));
    }
    let input = dir.path("in.csv");
    std::fs::write(&input, &csv).unwrap();
    let metrics =
        gaussdiv::Metrics::new(&[gaussdiv::Metric::Kl, gaussdiv::Metric::Hellinger]).unwrap();
    let mut want = vec![0f32; pairs.len() / 3 * 2];
    let ev = gaussdiv::Evaluator::new(gaussdiv::Backend::Cpu).unwrap();
    ev.evaluate(
        gaussdiv::Batch::Diagonal {
            pairs: &pairs,
            dims: 3,
        },
        &gaussdiv::Request::measures(metrics),
        &mut want,
    )
    .unwrap();
    let mut backends = vec!["cpu"];
    if common::gpu().is_some() {
        backends.push("gpu");
    }
    for backend in backends {
        let out = dir.path(&format!("out-{backend}.csv"));
        let o = run(&[
            "eval",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--dims",
            "3",
            "--metrics",
            "kl,hellinger",
            "--backend",
            backend,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let (header, rows) = parse_output(&std::fs::read_to_string(&out).unwrap());
        assert_eq!(header, ["kl", "hellinger"]);
        assert_eq!(rows.len(), pairs.len() / 3);
        let mut worst = 0f64;
        for (i, r) in rows.iter().enumerate() {
            for j in 0..2 {
                let (g, w) = (r[j], f64::from(want[i * 2 + j]));
                if backend == "cpu" {
                    assert_eq!(g, w, "row {i}");
                } else if w != 0.0 {
                    worst = worst.max((g - w).abs() / w.abs());
                }
            }
        }
        assert!(worst <= 2e-6, "{backend}: {worst:e}");
    }
    let bad = dir.path("bad.csv");
    std::fs::write(&bad, "mu1,sigma1,mu2,sigma2\n0,1,1,2\n0,1,1,2\n").unwrap();
    let out = dir.path("bad-out.csv");
    let o = run(&[
        "eval",
        bad.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--dims",
        "3",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not a multiple of --dims 3"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
}

/// Review findings: a huge `--dims` on a small input is an error (nothing is
/// reserved up front), and `--gradients --verify` in f64 is refused instead
/// of silently checking nothing.
#[test]
fn dims_and_gradient_verify_edge_cases() {
    let input = "mu1,sigma1,mu2,sigma2\n0,1,1,2\n0,1,1,2\n";
    let o = run_stdin(&["eval", "--backend", "cpu", "--dims", "4000000000"], input);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not a multiple of --dims"),
        "{}",
        stderr(&o)
    );
    let o = run_stdin(
        &[
            "eval",
            "--gradients",
            "--verify",
            "--precision",
            "f64",
            "--backend",
            "cpu",
        ],
        input,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--gradients --verify"),
        "{}",
        stderr(&o)
    );
}

/// The inputs and the truth of every measure (canonical order) of
/// `tests/data/golden_measures_{param}.csv`.
fn measures_truth(param: &str) -> Vec<(gaussdiv::GaussianPair, [f64; gaussdiv::Metric::COUNT])> {
    let names: Vec<&str> = gaussdiv::Metric::ALL.iter().map(|m| m.name()).collect();
    common::golden_rows(&format!("golden_measures_{param}.csv"), &names)
        .into_iter()
        .map(|r| {
            let mut t = [0.0; gaussdiv::Metric::COUNT];
            t.copy_from_slice(&r.values);
            (r.pair, t)
        })
        .collect()
}

/// `--precision f64 --backend gpu` with `--gradients` and with `--dims`: the
/// GPU f64 kernels, the same text as the CPU f64 path (bit-identical values
/// on lavapipe for these rows).
#[test]
fn f64_gradients_and_dims_on_the_gpu() {
    let Some(gpu) = gpu() else { return };
    if !gpu.gpu_info().is_some_and(|i| i.supports_f64) {
        eprintln!("SKIPPED: the adapter lacks SHADER_F64/SHADER_INT64");
        return;
    }
    let mut input = String::from("mu1,logvar1,mu2,logvar2\n");
    for i in 0..12 {
        let t = f64::from(i) / 7.0;
        input.push_str(&format!("{},{},{},{}\n", t - 0.5, -t, 0.3 * t, t * t - 1.0));
    }
    for extra in [&["--gradients"][..], &["--dims", "3"]] {
        let mut outs = Vec::new();
        for backend in ["cpu", "gpu"] {
            let mut args = vec![
                "eval",
                "-",
                "--param",
                "logvar",
                "--metrics",
                "kl,cross_entropy",
                "--precision",
                "f64",
                "--backend",
                backend,
            ];
            args.extend_from_slice(extra);
            let o = run_stdin(&args, &input);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{extra:?} {backend}: {}",
                stderr(&o)
            );
            outs.push(String::from_utf8(o.stdout).unwrap());
        }
        assert_eq!(outs[0], outs[1], "{extra:?}");
        assert!(outs[0].lines().count() > 1);
    }
}
