//! Full-covariance pairs in a real browser (`evaluateMvn`, the wasm CPU
//! path): every f32 row of `gaussdiv/tests/data/mvn_truth.csv` within the
//! bounds of issue 15 (as `gaussdiv/tests/mvn.rs` checks natively), invalid
//! pairs rejected by name or NaN, on the wasm CPU and on WebGPU.
#![cfg(target_arch = "wasm32")]

use gaussdiv::verify::{kl_error, scaled_error};
use gaussdiv::{Metric, Precision};
use gaussdiv_web::evaluate_mvn;
use js_sys::{Float32Array, Reflect};
use std::collections::BTreeMap;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const TRUTH: &str = include_str!("../../gaussdiv/tests/data/mvn_truth.csv");
const HALF_LN_2PI_E: f64 = 1.418_938_533_204_672_7;

struct Row {
    d: usize,
    mu1: Vec<f32>,
    m1: Vec<f32>,
    mu2: Vec<f32>,
    m2: Vec<f32>,
    cond: f64,
    lnl1: f64,
    lnl2: f64,
    truth: [f64; 10],
}

fn full(lower: &str, d: usize, tril: bool) -> Vec<f32> {
    let v: Vec<f32> = lower
        .split(';')
        .map(|h| f32::from_bits(u32::from_str_radix(h, 16).unwrap()))
        .collect();
    let mut m = vec![0f32; d * d];
    let mut k = 0;
    for i in 0..d {
        for j in 0..=i {
            m[i * d + j] = v[k];
            if !tril {
                m[j * d + i] = v[k];
            }
            k += 1;
        }
    }
    m
}

fn hex(s: &str) -> Vec<f32> {
    s.split(';')
        .map(|h| f32::from_bits(u32::from_str_radix(h, 16).unwrap()))
        .collect()
}

/// The f32 rows, grouped by (d, form of side 1, form of side 2).
fn groups() -> BTreeMap<(usize, String, String), Vec<Row>> {
    let mut g: BTreeMap<_, Vec<Row>> = BTreeMap::new();
    for line in TRUTH.lines().filter(|l| !l.starts_with('#')).skip(1) {
        let c: Vec<&str> = line.split(',').collect();
        if c[0] != "32" {
            continue;
        }
        let d: usize = c[2].parse().unwrap();
        let mut truth = [0.0; 10];
        for (k, t) in truth.iter_mut().enumerate() {
            *t = c[13 + k].parse().unwrap();
        }
        g.entry((d, c[3].to_string(), c[4].to_string()))
            .or_default()
            .push(Row {
                d,
                mu1: hex(c[5]),
                m1: full(c[6], d, c[3] == "tril"),
                mu2: hex(c[7]),
                m2: full(c[8], d, c[4] == "tril"),
                cond: c[9].parse::<f64>().unwrap().max(c[10].parse().unwrap()),
                lnl1: c[11].parse().unwrap(),
                lnl2: c[12].parse().unwrap(),
                truth,
            });
    }
    g
}

fn key(form: &str, side: u8) -> String {
    match form {
        "tril" => format!("scaleTril{side}"),
        "prec" => format!("precision{side}"),
        _ => format!("cov{side}"),
    }
}

fn set(o: &js_sys::Object, k: &str, v: JsValue) {
    Reflect::set(o, &JsValue::from_str(k), &v).unwrap();
}

fn f32s(v: &[f32]) -> JsValue {
    Float32Array::from(v).into()
}

fn all_metrics() -> JsValue {
    let o = js_sys::Object::new();
    let names: js_sys::Array = Metric::ALL
        .iter()
        .map(|m| JsValue::from_str(m.name()))
        .collect();
    set(&o, "metrics", names.into());
    o.into()
}

fn message(e: JsError) -> String {
    let v: JsValue = e.into();
    v.dyn_into::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .unwrap_or_default()
}

#[wasm_bindgen_test]
async fn truth_rows_within_bounds_on_the_wasm_cpu() {
    truth_rows_within_bounds("cpu").await;
}

/// The WebGPU kernel (SwiftShader in headless Chromium) with the wasm CPU
/// mirror for the pairs it leaves: the same bounds.
#[wasm_bindgen_test]
async fn truth_rows_within_bounds_on_webgpu() {
    truth_rows_within_bounds("gpu").await;
}

async fn truth_rows_within_bounds(backend: &str) {
    let mut checked = 0;
    let mut worst = 0f64;
    for ((d, p1, p2), rows) in groups() {
        let input = js_sys::Object::new();
        set(&input, "dims", JsValue::from_f64(d as f64));
        let cat = |f: fn(&Row) -> &Vec<f32>| -> Vec<f32> {
            rows.iter().flat_map(|r| f(r).iter().copied()).collect()
        };
        set(&input, "mu1", f32s(&cat(|r| &r.mu1)));
        set(&input, "mu2", f32s(&cat(|r| &r.mu2)));
        set(&input, &key(&p1, 1), f32s(&cat(|r| &r.m1)));
        set(&input, &key(&p2, 2), f32s(&cat(|r| &r.m2)));
        let options = all_metrics();
        set(
            options.unchecked_ref(),
            "backend",
            JsValue::from_str(backend),
        );
        let out = evaluate_mvn(input.into(), options).await.unwrap();
        assert_eq!(out.len(), rows.len() * 10);
        for (r, got) in rows.iter().zip(out.chunks(10)) {
            for (m, &g) in got.iter().enumerate() {
                let (g, t) = (f64::from(g), r.truth[m]);
                let base = if m >= 6 { 1e-5 } else { 2e-6 };
                let bound = f64::max(base, 4.0 * 2f64.powi(-24) * r.cond);
                let h0 = r.d as f64 * HALF_LN_2PI_E;
                let err = match m {
                    0 | 2 => scaled_error(g, t, h0 + r.lnl1 + r.truth[1], Precision::F32),
                    3 => scaled_error(g, t, h0 + r.lnl2 + r.truth[4], Precision::F32),
                    _ => kl_error(g, t, Precision::F32),
                };
                assert!(
                    err <= bound,
                    "{backend}: d={d} {p1}/{p2} {}: got {g:e}, truth {t:e}, error {err:e} > {bound:e}",
                    Metric::ALL[m].name()
                );
                worst = worst.max(err / bound);
                checked += 1;
            }
        }
    }
    assert!(checked > 3000, "{checked} values checked");
    console_log!(
        "full covariance, backend {backend}: {checked} values, worst error/bound {worst:.3}"
    );
}

#[wasm_bindgen_test]
async fn invalid_pairs_reject_or_give_nan() {
    // Pair 1's Σ2 = [[1, 2], [2, 1]] is indefinite.
    let input = || {
        let o = js_sys::Object::new();
        set(&o, "dims", JsValue::from_f64(2.0));
        set(&o, "mu1", f32s(&[0.0, 0.0, 1.0, 1.0, 0.5, 0.5]));
        set(&o, "mu2", f32s(&[1.0, 0.0, 0.0, 0.0, 0.5, 0.0]));
        set(
            &o,
            "cov1",
            f32s(&[1.0, 0.0, 0.0, 1.0, 2.0, 0.5, 0.5, 1.0, 1.0, 0.0, 0.0, 3.0]),
        );
        set(
            &o,
            "cov2",
            f32s(&[2.0, 0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 0.1, 0.1, 1.0]),
        );
        JsValue::from(o)
    };
    let e = message(evaluate_mvn(input(), JsValue::UNDEFINED).await.unwrap_err());
    assert!(
        e.contains("pair 1") && e.contains("cov2") && e.contains("pivot"),
        "{e}"
    );
    let o = js_sys::Object::new();
    set(&o, "onInvalid", JsValue::from_str("nan"));
    let out = evaluate_mvn(input(), o.into()).await.unwrap();
    assert_eq!(out.len(), 6);
    assert!(out[2].is_nan() && out[3].is_nan(), "{out:?}");
    assert!(
        out[0].is_finite() && out[1] > 0.0 && out[4].is_finite() && out[5] > 0.0,
        "{out:?}"
    );
    let o = js_sys::Object::new();
    set(
        &o,
        "metrics",
        js_sys::Array::of2(&"kl".into(), &"cross_entropy".into()).into(),
    );
    set(&o, "onInvalid", JsValue::from_str("nan"));
    let swapped = evaluate_mvn(input(), o.into()).await.unwrap();
    assert_eq!((swapped[0], swapped[1]), (out[1], out[0]));
    // On WebGPU the invalid pair is named the same way.
    let o = js_sys::Object::new();
    set(&o, "backend", JsValue::from_str("gpu"));
    let e_gpu = message(evaluate_mvn(input(), o.into()).await.unwrap_err());
    let e_cpu = message(evaluate_mvn(input(), JsValue::UNDEFINED).await.unwrap_err());
    assert_eq!(e_gpu, e_cpu);
    let bad = js_sys::Object::new();
    set(&bad, "dims", JsValue::from_f64(2.0));
    set(&bad, "mu1", f32s(&[0.0, 0.0]));
    set(&bad, "mu2", f32s(&[0.0, 0.0]));
    set(&bad, "cov1", f32s(&[1.0, 0.0, 0.0, 1.0]));
    let e = message(
        evaluate_mvn(bad.into(), JsValue::UNDEFINED)
            .await
            .unwrap_err(),
    );
    assert!(e.contains("exactly one of cov2"), "{e}");
}
