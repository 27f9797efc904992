//! `gaussdiv bench` from outside: the JSON fields, and the options that set
//! the conditions of the end-to-end runs (layout, policy, output buffer).
#[path = "../../gaussdiv/tests/common/mod.rs"]
mod common;
use common::gpu;
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

#[test]
fn bench_json_has_the_documented_fields() {
    let mut args = vec![
        "bench",
        "--pairs",
        "20000",
        "--runs",
        "2",
        "--json",
        "--backend",
        "cpu",
    ];
    if gpu().is_some() {
        let last = args.len() - 1;
        args[last] = "cpu,gpu";
    }
    let o = run(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = String::from_utf8(o.stdout).unwrap();
    assert!(
        s.trim_start().starts_with('[') && s.trim_end().ends_with(']'),
        "{s}"
    );
    for key in [
        "\"backend\": \"cpu\"",
        "\"pairs\": 20000",
        "\"mpairs_per_s\"",
        "\"worst_error\"",
    ] {
        assert!(s.contains(key), "{key} missing in {s}");
    }
    if gpu().is_some() {
        assert!(
            s.contains("\"backend\": \"gpu\"") && s.contains("\"kernel_mpairs_per_s\""),
            "{s}"
        );
    }
}

/// `--layout columns --on-invalid error --output fresh` run the CPU on four
/// columns under the error policy into a new buffer per run, say so in the
/// JSON, and their (verified) results are as accurate as the default's.
#[test]
fn bench_layout_policy_and_output_are_reported() {
    let o = run(&[
        "bench",
        "--pairs",
        "70001",
        "--runs",
        "2",
        "--json",
        "--backend",
        "cpu",
        "--metrics",
        "kl",
        "--layout",
        "columns",
        "--on-invalid",
        "error",
        "--output",
        "fresh",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = String::from_utf8(o.stdout).unwrap();
    for key in [
        "\"layout\": \"columns\"",
        "\"on_invalid\": \"error\"",
        "\"output\": \"fresh\"",
        "\"pairs\": 70001",
    ] {
        assert!(s.contains(key), "{key} missing in {s}");
    }
    let worst: f64 = s
        .split("\"worst_error\": ")
        .nth(1)
        .and_then(|r| r.split(['}', ',']).next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN);
    assert!(worst < 1e-5, "worst error {worst} in {s}");
    let d = run(&["bench", "--pairs", "100", "--runs", "1", "--backend", "cpu"]);
    assert!(
        String::from_utf8_lossy(&d.stdout).contains("pairs layout, on_invalid nan, reused output"),
        "{}",
        String::from_utf8_lossy(&d.stdout)
    );
    let bad = run(&["bench", "--layout", "rows"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
}
