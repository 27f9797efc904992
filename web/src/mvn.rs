//! Full-covariance pairs in the browser (`evaluateMvn`; docs/ARCHITECTURE.md
//! §9): the library's CPU path in wasm, f32, as natively, by default; with
//! `backend: "gpu"` the WebGPU kernel for pairs far apart and the wasm CPU
//! for the pairs it leaves (close together, invalid), as natively.

use crate::options::{self, Choice};
use crate::state;
use gaussdiv::{Batch, Covariance, Metric, MvnPairs, Request};
use js_sys::Float32Array;
use wasm_bindgen::prelude::*;

/// `input[key]` as f32 values (a Float32Array, or any array of numbers), or
/// `None` when absent.
fn values(input: &JsValue, key: &str) -> Result<Option<Vec<f32>>, JsError> {
    let Some(v) = options::field(input, "input", key)? else {
        return Ok(None);
    };
    if let Some(a) = v.dyn_ref::<Float32Array>() {
        return Ok(Some(a.to_vec()));
    }
    if js_sys::Array::is_array(&v) {
        let mut out = Vec::new();
        for (i, x) in js_sys::Array::from(&v).iter().enumerate() {
            let f = x
                .as_f64()
                .ok_or_else(|| JsError::new(&format!("input.{key}[{i}] is not a number")))?;
            out.push(f as f32);
        }
        return Ok(Some(out));
    }
    Err(JsError::new(&format!(
        "input.{key} must be a Float32Array or an array of numbers"
    )))
}

/// The [`Covariance`] a side's key (without its 1 or 2) names.
fn form<'a>(key: &str, v: &'a [f32]) -> Covariance<'a, f32> {
    match key {
        "scaleTril" => Covariance::ScaleTril(v),
        "precision" => Covariance::Precision(v),
        _ => Covariance::Cov(v),
    }
}

/// One side's matrices: exactly one of `cov{side}`, `scaleTril{side}`,
/// `precision{side}`.
fn matrices(input: &JsValue, side: u8) -> Result<(&'static str, Vec<f32>), JsError> {
    let mut found = Vec::new();
    for key in ["cov", "scaleTril", "precision"] {
        if let Some(v) = values(input, &format!("{key}{side}"))? {
            found.push((key, v));
        }
    }
    if found.len() != 1 {
        return Err(JsError::new(&format!(
            "input needs exactly one of cov{side}, scaleTril{side}, precision{side} (found {})",
            found.len()
        )));
    }
    found
        .pop()
        .ok_or_else(|| JsError::new("input: no matrices"))
}

/// Measures of full-covariance pairs. `input` is `{ dims, mu1, mu2, cov1 |
/// scaleTril1 | precision1, cov2 | scaleTril2 | precision2 }`: means N·d
/// values, matrices N·d·d values row-major (Float32Array or arrays of
/// numbers). The result holds `k` values per pair in the order of
/// `options.metrics` (default `["cross_entropy", "kl"]`). `options.onInvalid`:
/// `"error"` rejects naming the pair, the array and the reason (the Cholesky
/// pivot for a matrix that is not positive definite); `"nan"` gives NaN rows.
/// Computed on the wasm CPU, or with `backend: "gpu"` on WebGPU (pairs far
/// apart; the others on the wasm CPU), d ≤ 64 there.
#[wasm_bindgen(js_name = evaluateMvn)]
pub async fn evaluate_mvn(input: JsValue, options: JsValue) -> Result<Vec<f32>, JsError> {
    let o = options::read(&options, &[Metric::CrossEntropy, Metric::Kl])?;
    if !input.is_object() {
        return Err(JsError::new(
            "input must be an object { dims, mu1, mu2, cov1, cov2 }",
        ));
    }
    let dims = options::field(&input, "input", "dims")?
        .and_then(|d| d.as_f64())
        .filter(|d| d.fract() == 0.0 && *d >= 1.0 && *d <= 1e6)
        .ok_or_else(|| JsError::new("input.dims must be an integer ≥ 1"))? as usize;
    let mu1 = values(&input, "mu1")?.ok_or_else(|| JsError::new("input.mu1 is missing"))?;
    let mu2 = values(&input, "mu2")?.ok_or_else(|| JsError::new("input.mu2 is missing"))?;
    let (k1, m1) = matrices(&input, 1)?;
    let (k2, m2) = matrices(&input, 2)?;
    let batch = MvnPairs {
        dims,
        mu1: &mu1,
        cov1: form(k1, &m1),
        mu2: &mu2,
        cov2: form(k2, &m2),
    };
    let request = Request::measures(o.set()).with_on_invalid(o.on_invalid);
    let k = request.values_per_pair();
    let n = batch.len();
    let mut out = vec![
        0f32;
        n.checked_mul(k)
            .ok_or_else(|| JsError::new("too many pairs"))?
    ];
    // The default is the CPU: the kernel leaves close pairs to it anyway.
    let choice = if o.backend == Choice::Gpu {
        Choice::Gpu
    } else {
        Choice::Cpu
    };
    let ev = state::evaluator(choice, None).await?;
    ev.evaluate_async(Batch::Mvn(batch), &request, &mut out)
        .await
        .map_err(|e| JsError::new(&e.to_string()))?;
    Ok(crate::api::reorder(out, &o.columns(), 1))
}
