//! The JS API in a real browser (headless Chromium with WebGPU through
//! `wasm-bindgen-test-runner`; see scripts/test.sh): the golden files through
//! `evaluate` on WebGPU and on the wasm CPU path under docs/ARCHITECTURE.md
//! §3's bounds, every measure and parameterisation, chunking, invalid rows
//! under both policies, gradients, pairwise, verify and an app's own device.
//!
//! The GPU tests fail (never skip) when the browser gives no adapter and the
//! suite was built with `GAUSSDIV_REQUIRE_GPU=1` (as CI builds it).
#![cfg(target_arch = "wasm32")]

use gaussdiv::verify::{kl_error, measure_error, scaled_error, term_scale};
use gaussdiv::{Metric, Precision};
use gaussdiv_web::{adapter_info, evaluate, evaluate_pairwise, gradients, use_device, verify};
use js_sys::Reflect;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The golden files, compiled in (a browser test cannot read the disk).
const GOLDEN_PUBLIC: &str = include_str!("../../gaussdiv/tests/data/golden_public.csv");
const GOLDEN_MEASURES: [(&str, &str); 5] = [
    (
        "std",
        include_str!("../../gaussdiv/tests/data/golden_measures_std.csv"),
    ),
    (
        "var",
        include_str!("../../gaussdiv/tests/data/golden_measures_var.csv"),
    ),
    (
        "logstd",
        include_str!("../../gaussdiv/tests/data/golden_measures_logstd.csv"),
    ),
    (
        "logvar",
        include_str!("../../gaussdiv/tests/data/golden_measures_logvar.csv"),
    ),
    (
        "precision",
        include_str!("../../gaussdiv/tests/data/golden_measures_precision.csv"),
    ),
];

/// Rows of a golden CSV: the f32 inputs (from the `bits` column) and the
/// values of `columns`.
fn rows(text: &str, columns: &[&str]) -> (Vec<f32>, Vec<Vec<f64>>) {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let cols: Vec<usize> = columns.iter().map(|c| col(c)).collect();
    let bits = col("bits");
    let (mut pairs, mut truth) = (Vec::new(), Vec::new());
    for l in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = l.split(',').collect();
        for x in f[bits].split(':') {
            pairs.push(f32::from_bits(u32::from_str_radix(x, 16).unwrap()));
        }
        truth.push(cols.iter().map(|&c| f[c].parse().unwrap()).collect());
    }
    (pairs, truth)
}

fn opts(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = js_sys::Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &JsValue::from_str(k), v).unwrap();
    }
    o.into()
}

fn names(ms: &[&str]) -> JsValue {
    ms.iter()
        .map(|m| JsValue::from_str(m))
        .collect::<js_sys::Array>()
        .into()
}

fn message(e: JsError) -> String {
    let v: JsValue = e.into();
    v.dyn_into::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .unwrap_or_default()
}

/// Whether the GPU tests may run: `false` (skip, with a message) only when
/// there is no adapter and the suite was not built with GAUSSDIV_REQUIRE_GPU=1.
async fn gpu_available() -> bool {
    let info = adapter_info().await.unwrap();
    let ok = Reflect::get(&info, &"available".into()).unwrap().as_bool() == Some(true);
    if !ok {
        let reason = Reflect::get(&info, &"reason".into()).unwrap();
        if option_env!("GAUSSDIV_REQUIRE_GPU") == Some("1") {
            panic!("GAUSSDIV_REQUIRE_GPU=1 but the browser gives no WebGPU adapter: {reason:?}");
        }
        console_log!("SKIPPED: no WebGPU adapter ({reason:?})");
    }
    ok
}

/// Every measure of every golden row, every parameterisation, on `backend`,
/// against the 60-digit truth under the bound.
async fn golden_measures(backend: &str, bound: f64) {
    let all: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
    for (param, text) in GOLDEN_MEASURES {
        let (pairs, truth) = rows(text, &all);
        let o = opts(&[
            ("metrics", names(&all)),
            ("param", param.into()),
            ("backend", backend.into()),
        ]);
        let got = evaluate(pairs, o).await.unwrap();
        let (mut worst, mut fails) = ([0f64; Metric::COUNT], Vec::new());
        for (i, t) in truth.iter().enumerate() {
            let t: [f64; Metric::COUNT] = t.as_slice().try_into().unwrap();
            for (j, m) in Metric::ALL.into_iter().enumerate() {
                let g = f64::from(got[i * Metric::COUNT + j]);
                let e = measure_error(m, g, &t, Precision::F32);
                worst[j] = worst[j].max(e);
                if e.is_nan() || e > bound {
                    fails.push(format!(
                        "{param} row {i} {m}: got {g:e} want {:e} error {e:.2e}",
                        t[j]
                    ));
                }
            }
            if t[1] == 0.0 && got[i * Metric::COUNT + 1] != 0.0 {
                fails.push(format!("{param} row {i}: KL must be exactly 0"));
            }
        }
        console_log!(
            "{backend} {param}: {} rows, worst error per measure {:?}",
            truth.len(),
            worst.map(|w| format!("{w:.2e}"))
        );
        assert!(
            fails.is_empty(),
            "{backend}: {} failures:\n{}",
            fails.len(),
            fails[..fails.len().min(20)].join("\n")
        );
    }
}

/// The public golden file (cross-entropy, KL, entropy) on `backend`.
async fn golden_public(backend: &str, bound: f64) {
    let (pairs, truth) = rows(GOLDEN_PUBLIC, &["ce", "kl", "entropy1"]);
    let sigma1: Vec<f64> = pairs.chunks(4).map(|p| f64::from(p[1])).collect();
    let o = opts(&[
        ("metrics", names(&["kl", "cross_entropy", "entropy"])),
        ("backend", backend.into()),
    ]);
    let got = evaluate(pairs, o).await.unwrap();
    let mut worst = [0f64; 3];
    for (i, t) in truth.iter().enumerate() {
        let (kl, ce, h) = (
            got[3 * i] as f64,
            got[3 * i + 1] as f64,
            got[3 * i + 2] as f64,
        );
        let scale = term_scale(sigma1[i], t[1]);
        let e = [
            scaled_error(ce, t[0], scale, Precision::F32),
            kl_error(kl, t[1], Precision::F32),
            scaled_error(h, t[2], scale, Precision::F32),
        ];
        for j in 0..3 {
            worst[j] = worst[j].max(e[j]);
            assert!(
                e[j] <= bound,
                "{backend} row {i} measure {j}: error {:e} > {bound:e}",
                e[j]
            );
        }
        assert!(kl >= 0.0, "{backend} row {i}: negative KL");
    }
    console_log!(
        "{backend} golden_public: {} rows, worst CE {:.2e} KL {:.2e} entropy {:.2e}",
        truth.len(),
        worst[0],
        worst[1],
        worst[2]
    );
}

#[wasm_bindgen_test]
async fn golden_files_on_webgpu() {
    if gpu_available().await {
        golden_public("gpu", 2e-6).await;
        golden_measures("gpu", 2e-6).await;
    }
}

#[wasm_bindgen_test]
async fn golden_files_on_the_wasm_cpu() {
    // The CPU path's own bound (1e-6), tighter than the GPU's.
    golden_public("cpu", 1e-6).await;
    golden_measures("cpu", 1e-6).await;
}

fn random_pairs(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    let mut next = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64) / (1u64 << 53) as f64
    };
    let mut v = Vec::with_capacity(4 * n);
    for _ in 0..n {
        let (m1, s1, m2, s2) = (next(), next(), next(), next());
        v.extend_from_slice(&[
            (m1 * 20.0 - 10.0) as f32,
            10f64.powf(s1 * 4.0 - 2.0) as f32,
            (m2 * 20.0 - 10.0) as f32,
            10f64.powf(s2 * 4.0 - 2.0) as f32,
        ]);
    }
    v
}

#[wasm_bindgen_test]
async fn chunks_beyond_one_binding_give_the_same_results() {
    if !gpu_available().await {
        return;
    }
    // 100 000 pairs in chunks of 256: 391 chunks, each its own binding and
    // dispatch; the kernel's value per pair must not depend on the chunking.
    let pairs = random_pairs(100_000, 7);
    let whole = evaluate(pairs.clone(), opts(&[("backend", "gpu".into())]))
        .await
        .unwrap();
    let chunked = evaluate(
        pairs.clone(),
        opts(&[("backend", "gpu".into()), ("chunkPairs", 256.into())]),
    )
    .await
    .unwrap();
    assert_eq!(whole.len(), 200_000);
    assert!(whole
        .iter()
        .zip(&chunked)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    // And both within the GPU bound of the f64 CPU reference.
    let report = verify(pairs, chunked, opts(&[("backend", "gpu".into())]))
        .await
        .unwrap();
    assert_eq!(
        Reflect::get(&report, &"passed".into()).unwrap().as_bool(),
        Some(true),
        "{report:?}"
    );
}

async fn invalid_rows_on(backend: &str) {
    let mut pairs = random_pairs(100, 3);
    let valid = evaluate(pairs.clone(), opts(&[("backend", backend.into())]))
        .await
        .unwrap();
    pairs[17 * 4 + 1] = -1.0; // σ1 of row 17
    let e = evaluate(pairs.clone(), opts(&[("backend", backend.into())]))
        .await
        .unwrap_err();
    let m = message(e);
    assert!(
        m.contains("row 17") && m.contains("sigma1") && m.contains("-1"),
        "{backend}: {m}"
    );
    // Named in the parameterisation's own terms.
    let e = evaluate(
        pairs.clone(),
        opts(&[("backend", backend.into()), ("param", "var".into())]),
    )
    .await
    .unwrap_err();
    let m = message(e);
    assert!(m.contains("row 17") && m.contains("var1"), "{backend}: {m}");
    let got = evaluate(
        pairs,
        opts(&[("backend", backend.into()), ("onInvalid", "nan".into())]),
    )
    .await
    .unwrap();
    for (i, (g, v)) in got.chunks(2).zip(valid.chunks(2)).enumerate() {
        if i == 17 {
            assert!(g.iter().all(|x| x.is_nan()), "{backend}: row 17 {g:?}");
        } else {
            assert!(
                g.iter().zip(v).all(|(a, b)| a.to_bits() == b.to_bits()),
                "{backend}: row {i}"
            );
        }
    }
}

#[wasm_bindgen_test]
async fn invalid_rows_under_both_policies() {
    invalid_rows_on("cpu").await;
    if gpu_available().await {
        invalid_rows_on("gpu").await;
    }
}

#[wasm_bindgen_test]
async fn bad_options_and_shapes_reject_with_a_message() {
    let e = evaluate(vec![0.0; 5], JsValue::UNDEFINED)
        .await
        .unwrap_err();
    assert!(message(e).contains("4 values per pair"));
    let e = evaluate(
        vec![0.0, 1.0, 0.0, 1.0],
        opts(&[("metrics", names(&["kl", "nope"]))]),
    )
    .await
    .unwrap_err();
    assert!(message(e).contains("unknown metric \"nope\""));
    let e = evaluate(vec![0.0, 1.0, 0.0, 1.0], opts(&[("param", "sd".into())]))
        .await
        .unwrap_err();
    assert!(message(e).contains("unknown param"));
    let e = evaluate(vec![0.0, 1.0, 0.0, 1.0], opts(&[("backend", "tpu".into())]))
        .await
        .unwrap_err();
    assert!(message(e).contains("unknown backend"));
}

#[wasm_bindgen_test]
async fn gradients_and_pairwise_agree_with_the_cpu_path() {
    let use_gpu = gpu_available().await;
    let pairs = random_pairs(5000, 11);
    let cpu = gradients(
        pairs.clone(),
        opts(&[
            ("backend", "cpu".into()),
            ("metrics", names(&["kl", "cross_entropy"])),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(cpu.len(), 5000 * 8);
    // KL's gradient first, as asked: ∂KL/∂μ1 = (μ1 − μ2)/σ2².
    for (i, p) in pairs.chunks(4).enumerate().take(100) {
        let want = (f64::from(p[0]) - f64::from(p[2])) / f64::from(p[3]).powi(2);
        let got = f64::from(cpu[8 * i]);
        assert!(
            (got - want).abs() <= 1e-5 * want.abs().max(1e-30),
            "row {i}: {got} vs {want}"
        );
    }
    if use_gpu {
        let gpu = gradients(
            pairs.clone(),
            opts(&[
                ("backend", "gpu".into()),
                ("metrics", names(&["kl", "cross_entropy"])),
            ]),
        )
        .await
        .unwrap();
        for (i, (g, c)) in gpu.iter().zip(&cpu).enumerate() {
            let scale = c.abs().max(1e-30);
            assert!(
                ((g - c).abs() / scale) < 1e-4,
                "gradient {i}: gpu {g} cpu {c}"
            );
        }
    }
    // Pairwise N × M equals evaluate on the spelled-out pairs.
    let p: Vec<f32> = pairs[..4 * 30]
        .chunks(4)
        .flat_map(|x| [x[0], x[1]])
        .collect();
    let q: Vec<f32> = pairs[4 * 30..4 * 70]
        .chunks(4)
        .flat_map(|x| [x[2], x[3]])
        .collect();
    let mut spelled = Vec::new();
    for a in p.chunks(2) {
        for b in q.chunks(2) {
            spelled.extend_from_slice(&[a[0], a[1], b[0], b[1]]);
        }
    }
    for backend in if use_gpu {
        vec!["cpu", "gpu"]
    } else {
        vec!["cpu"]
    } {
        let grid = evaluate_pairwise(
            p.clone(),
            q.clone(),
            opts(&[("backend", backend.into()), ("metric", "kl".into())]),
        )
        .await
        .unwrap();
        let flat = evaluate(
            spelled.clone(),
            opts(&[("backend", backend.into()), ("metrics", names(&["kl"]))]),
        )
        .await
        .unwrap();
        assert_eq!(grid.len(), 30 * 40);
        for (i, (g, f)) in grid.iter().zip(&flat).enumerate() {
            assert!(
                (g - f).abs() <= 2e-6 * f.abs().max(1e-30),
                "{backend} cell {i}: {g} vs {f}"
            );
        }
    }
}

#[wasm_bindgen(inline_js = "export async function app_device() { \
    const a = await navigator.gpu.requestAdapter(); \
    if (!a) { return null; } \
    return await a.requestDevice(); }")]
extern "C" {
    async fn app_device() -> JsValue;
}

#[wasm_bindgen_test]
async fn an_apps_own_device_runs_the_kernel() {
    if !gpu_available().await {
        return;
    }
    let pairs = random_pairs(10_000, 5);
    let before = evaluate(pairs.clone(), opts(&[("backend", "gpu".into())]))
        .await
        .unwrap();
    let device = app_device().await;
    assert!(!device.is_null(), "no adapter for the app's own device");
    use_device(device.clone()).await.unwrap();
    // The shim is gone: navigator.gpu.requestAdapter is the browser's again.
    let gpu = Reflect::get(&web_navigator_gpu(), &"requestAdapter".into()).unwrap();
    assert!(!js_sys::Object::has_own(
        &web_navigator_gpu().into(),
        &"requestAdapter".into()
    ));
    assert!(gpu.is_function());
    let after = evaluate(pairs, opts(&[("backend", "gpu".into())]))
        .await
        .unwrap();
    assert!(before
        .iter()
        .zip(&after)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    // Not a GPUDevice: a clear rejection.
    let e = use_device(JsValue::from_f64(3.0)).await.unwrap_err();
    assert!(message(e).contains("GPUDevice"));
}

#[wasm_bindgen(inline_js = "export function web_navigator_gpu() { return navigator.gpu; }")]
extern "C" {
    fn web_navigator_gpu() -> JsValue;
}

/// The WGSL modules, assembled exactly as the library does.
#[allow(dead_code)]
mod sources {
    include!("../../gaussdiv/shaders/modules.rs");
}

#[wasm_bindgen(inline_js = "export async function wgsl_errors(code) { \
    const a = await navigator.gpu.requestAdapter(); \
    if (!a) { return 'no adapter'; } \
    const d = await a.requestDevice(); \
    const m = d.createShaderModule({ code }); \
    const info = await m.getCompilationInfo(); \
    return info.messages.filter(x => x.type === 'error') \
        .map(x => `${x.lineNum}:${x.linePos}: ${x.message}`).join('\\n'); }")]
extern "C" {
    async fn wgsl_errors(code: &str) -> JsValue;
}

/// Chrome compiles WGSL with Tint, not naga: every f32 module the web build
/// uses must compile there without an error (f64 modules need SHADER_F64,
/// which WebGPU does not have).
#[wasm_bindgen_test]
async fn every_f32_module_compiles_in_the_browser() {
    for (name, code) in [
        ("main f32", sources::MAIN_F32),
        ("diagonal f32", sources::DIAGONAL_F32),
    ] {
        let errors = wgsl_errors(code).await.as_string().unwrap_or_default();
        assert!(
            errors.is_empty(),
            "{name}: Tint rejects the module:\n{errors}"
        );
    }
}

/// WGSL lets a device flush subnormal results to zero (SwiftShader does):
/// such results must still come out as the CPU computes them.
#[wasm_bindgen_test]
async fn subnormal_results_survive_a_flushing_device() {
    if !gpu_available().await {
        return;
    }
    let info = adapter_info().await.unwrap();
    console_log!(
        "flushesSubnormals: {:?}",
        Reflect::get(&info, &"flushesSubnormals".into()).unwrap()
    );
    // KL = ½(1e-20)² = 5e-41 and a coefficient e^-90 ≈ 8e-40: both subnormal f32.
    let pairs = vec![0.0, 1.0, 1e-20, 1.0, 0.0, 1.0, 26.832816, 1.0];
    let all: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
    let o = |b: &str| opts(&[("metrics", names(&all)), ("backend", b.into())]);
    let gpu = evaluate(pairs.clone(), o("gpu")).await.unwrap();
    let cpu = evaluate(pairs, o("cpu")).await.unwrap();
    assert!(
        cpu[1] > 0.0 && cpu[1] < f32::MIN_POSITIVE,
        "CPU KL {:e}",
        cpu[1]
    );
    assert!(
        cpu[17] > 0.0 && cpu[17] < f32::MIN_POSITIVE,
        "CPU coefficient {:e}",
        cpu[17]
    );
    for (i, (g, c)) in gpu.iter().zip(&cpu).enumerate() {
        assert!(
            g.to_bits() == c.to_bits() || (g - c).abs() <= 2e-6 * c.abs(),
            "value {i}: gpu {g:e} cpu {c:e}"
        );
    }
}

/// The page reads files with the tool's own readers and messages.
#[wasm_bindgen_test]
async fn tables_are_read_as_the_tool_reads_them() {
    let csv = include_bytes!("../../gaussdiv/examples/pairs.csv").to_vec();
    let pairs = gaussdiv_web::parse_table(csv, "pairs.csv".into(), JsValue::UNDEFINED)
        .await
        .unwrap();
    assert_eq!(pairs.len(), 4 * 100);
    assert_eq!(&pairs[..4], &[0.0, 1.0, 1.0, 2.0]);
    let bad = b"mu1,sigma1,mu2,sigma2\n0,1,0,1\n0,1,0,-2\n".to_vec();
    let e = gaussdiv_web::parse_table(bad.clone(), "bad.csv".into(), JsValue::UNDEFINED)
        .await
        .unwrap_err();
    let m = message(e);
    assert!(
        m.contains("row 2") && m.contains("sigma2") && m.contains("-2"),
        "{m}"
    );
    // The tool's hint, in the API's terms.
    assert!(
        m.contains("onInvalid") && !m.contains("--on-invalid"),
        "{m}"
    );
    // Under onInvalid "nan" the row is kept, and evaluates to NaN.
    let kept =
        gaussdiv_web::parse_table(bad, "bad.csv".into(), opts(&[("onInvalid", "nan".into())]))
            .await
            .unwrap();
    assert_eq!(kept.len(), 8);
    let out = evaluate(
        kept,
        opts(&[("onInvalid", "nan".into()), ("backend", "cpu".into())]),
    )
    .await
    .unwrap();
    assert!(out[2].is_nan() && out[3].is_nan() && out[0].is_finite() && out[1] == 0.0);
}
