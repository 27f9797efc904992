//! The functions of the JS module `gaussdiv`.

use crate::options::{self, CallOptions, Choice};
use crate::state;
use gaussdiv::{
    verify as verify_batch, Batch, Error, Gaussian, GaussianPair, Metric, Param, Request, Tolerance,
};
use gaussdiv_cli::io::{column_name, source_from_reader, Format, Rows};
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;

/// The library's error as a JS message: an invalid row is named by its
/// index, the field (as the tool names it in `param`) and the value.
fn error(e: Error, param: Param) -> JsError {
    match e {
        Error::InvalidInput {
            index,
            field,
            value,
            reason,
        } => JsError::new(&format!(
            "invalid input at row {index}, field {}: value {value} ({reason})",
            column_name(field, param)
        )),
        other => JsError::new(&other.to_string()),
    }
}

/// `values` (4 f32 per pair) as pairs.
fn pairs_of(values: &[f32]) -> Result<&[GaussianPair], JsError> {
    if !values.len().is_multiple_of(4) {
        return Err(JsError::new(&format!(
            "pairs must hold 4 values per pair (mu1, a1, mu2, a2); got {} values",
            values.len()
        )));
    }
    bytemuck::try_cast_slice(values).map_err(|e| JsError::new(&format!("pairs: {e}")))
}

/// `values` (2 f32 per Gaussian) as Gaussians.
fn gaussians_of<'a>(values: &'a [f32], what: &str) -> Result<&'a [Gaussian], JsError> {
    if !values.len().is_multiple_of(2) {
        return Err(JsError::new(&format!(
            "{what} must hold 2 values per Gaussian (mu, a); got {} values",
            values.len()
        )));
    }
    bytemuck::try_cast_slice(values).map_err(|e| JsError::new(&format!("{what}: {e}")))
}

fn output_len(rows: usize, k: usize) -> Result<usize, JsError> {
    rows.checked_mul(k)
        .filter(|&n| n <= (isize::MAX as usize) / 4)
        .ok_or_else(|| JsError::new("the output would not fit in memory"))
}

/// Reorder rows of `width × blocks` values from the library's canonical
/// measure order into the order asked for (`columns[j]`: the canonical
/// position of the j-th requested measure; `width` values per measure).
pub(crate) fn reorder(out: Vec<f32>, columns: &[usize], width: usize) -> Vec<f32> {
    let k = columns.len() * width;
    if columns.iter().enumerate().all(|(j, &c)| j == c) || k == 0 {
        return out;
    }
    let mut v = Vec::with_capacity(out.len());
    for row in out.chunks_exact(k) {
        for &c in columns {
            v.extend_from_slice(row.get(c * width..(c + 1) * width).unwrap_or(&[]));
        }
    }
    v
}

/// The inverse of [`reorder`].
fn unorder(values: &[f32], columns: &[usize], width: usize) -> Vec<f32> {
    let k = columns.len() * width;
    let mut v = values.to_vec();
    if k == 0 {
        return v;
    }
    for (dst, src) in v.chunks_exact_mut(k).zip(values.chunks_exact(k)) {
        for (j, &c) in columns.iter().enumerate() {
            if let (Some(d), Some(s)) = (
                dst.get_mut(c * width..(c + 1) * width),
                src.get(j * width..(j + 1) * width),
            ) {
                d.copy_from_slice(s);
            }
        }
    }
    v
}

fn request_of(o: &CallOptions, gradients: bool) -> Request {
    let r = if gradients {
        Request::gradients(o.set())
    } else {
        Request::measures(o.set())
    };
    r.with_param(o.param).with_on_invalid(o.on_invalid)
}

/// Evaluate measures of Gaussian pairs: `pairs` holds μ1, a1, μ2, a2 per
/// pair (a in `options.param`); the result holds `k` values per pair,
/// row-major, in the order of `options.metrics` (default
/// `["cross_entropy", "kl"]`). Options: `metrics`, `param`
/// (`std|var|logstd|logvar|precision`), `backend` (`"gpu"`, `"cpu"`;
/// default the GPU when the browser gives an adapter), `onInvalid`
/// (`"error"`: reject naming the row and field; `"nan"`: NaN rows),
/// `chunkPairs` (pairs per GPU chunk; default as large as the device allows).
#[wasm_bindgen]
pub async fn evaluate(pairs: Vec<f32>, options: JsValue) -> Result<Vec<f32>, JsError> {
    on_pairs(pairs, options, false).await
}

/// Gradients of cross-entropy and/or KL (`options.metrics`, default both):
/// 4 values per measure and pair, `[∂/∂μ1, ∂/∂a1, ∂/∂μ2, ∂/∂a2]`, measures
/// in the order asked for. Other options as for [`evaluate`].
#[wasm_bindgen]
pub async fn gradients(pairs: Vec<f32>, options: JsValue) -> Result<Vec<f32>, JsError> {
    on_pairs(pairs, options, true).await
}

/// [`evaluate`] or, with `grads`, [`gradients`]: an array of pairs on the
/// backend asked for, columns in the order asked for.
async fn on_pairs(pairs: Vec<f32>, options: JsValue, grads: bool) -> Result<Vec<f32>, JsError> {
    let o = options::read(&options, &[Metric::CrossEntropy, Metric::Kl])?;
    let p = pairs_of(&pairs)?;
    let request = request_of(&o, grads);
    let mut out = vec![0f32; output_len(p.len(), request.values_per_pair())?];
    let ev = state::evaluator(o.backend, o.chunk_pairs).await?;
    ev.evaluate_async(Batch::Pairs(p), &request, &mut out)
        .await
        .map_err(|e| error(e, o.param))?;
    // Gradients: 4 values per measure (∂/∂μ1, ∂/∂a1, ∂/∂μ2, ∂/∂a2).
    let width = if grads { 4 } else { 1 };
    Ok(reorder(out, &o.columns(), width))
}

/// Every pair of `p` × `q` (each μ, a per Gaussian): an N × M result,
/// row-major, of `options.metric` (default `"kl"`; `options.metrics` gives
/// N × M × k). Other options as for [`evaluate`]; an invalid row is named by
/// its cell index `i × M + j`.
#[wasm_bindgen(js_name = evaluatePairwise)]
pub async fn evaluate_pairwise(
    p: Vec<f32>,
    q: Vec<f32>,
    options: JsValue,
) -> Result<Vec<f32>, JsError> {
    let o = options::read(&options, &[Metric::Kl])?;
    let (gp, gq) = (gaussians_of(&p, "p")?, gaussians_of(&q, "q")?);
    let request = request_of(&o, false);
    let cells = gp
        .len()
        .checked_mul(gq.len())
        .ok_or_else(|| JsError::new("N × M overflows"))?;
    let mut out = vec![0f32; output_len(cells, request.values_per_pair())?];
    let ev = state::evaluator(o.backend, o.chunk_pairs).await?;
    ev.evaluate_async(Batch::Pairwise { p: gp, q: gq }, &request, &mut out)
        .await
        .map_err(|e| error(e, o.param))?;
    Ok(reorder(out, &o.columns(), 1))
}

fn set(obj: &Object, key: &str, value: impl Into<JsValue>) {
    let _ = Reflect::set(obj, &JsValue::from_str(key), &value.into());
}

/// Check `results` (as returned by [`evaluate`] with the same `pairs` and
/// options) against the CPU path in f64: per measure the bound, the number
/// of rows outside it and the worst row. `options.backend` picks the bound
/// (`"gpu"` or default: 2e-6; `"cpu"`: 1e-6, DESIGN §3 of the tolerance model).
#[wasm_bindgen]
pub async fn verify(
    pairs: Vec<f32>,
    results: Vec<f32>,
    options: JsValue,
) -> Result<JsValue, JsError> {
    let o = options::read(&options, &[Metric::CrossEntropy, Metric::Kl])?;
    let p = pairs_of(&pairs)?;
    let request = request_of(&o, false);
    let canonical = unorder(&results, &o.columns(), 1);
    let tolerance = if o.backend == Choice::Cpu {
        Tolerance::CPU_F32
    } else {
        Tolerance::GPU_F32
    };
    let report = verify_batch(Batch::Pairs(p), &request, &canonical, tolerance)
        .map_err(|e| error(e, o.param))?;
    let obj = Object::new();
    set(&obj, "rows", report.rows as f64);
    set(&obj, "passed", report.passed());
    let list = Array::new();
    for m in &report.metrics {
        let r = Object::new();
        set(&r, "metric", m.metric.name());
        set(&r, "bound", m.bound);
        set(&r, "failures", m.failures as f64);
        if let Some(w) = &m.worst {
            let row = Object::new();
            set(&row, "row", w.index as f64);
            set(&row, "got", w.got);
            set(&row, "want", w.want);
            set(&row, "error", w.error);
            let pair = Array::new();
            for v in [w.pair.mu1, w.pair.sigma1, w.pair.mu2, w.pair.sigma2] {
                pair.push(&JsValue::from_f64(v));
            }
            set(&row, "pair", pair);
            set(&r, "worst", row);
        } else {
            set(&r, "worst", JsValue::NULL);
        }
        list.push(&r);
    }
    set(&obj, "metrics", list);
    Ok(obj.into())
}

/// What the GPU path runs on: `{ available, backend, vendor, architecture,
/// device, description, fallback, f64, limits: {…}, chunkPairs,
/// hostChunkPairs }`, or `{ available: false, reason }` when the browser
/// gives no usable WebGPU adapter.
#[wasm_bindgen(js_name = adapterInfo)]
pub async fn adapter_info() -> Result<JsValue, JsError> {
    let obj = Object::new();
    let ev = match state::evaluator(Choice::Gpu, None).await {
        Ok(ev) => ev,
        Err(_) => {
            set(&obj, "available", false);
            set(
                &obj,
                "reason",
                state::gpu_failure().unwrap_or_else(|| "no WebGPU adapter".into()),
            );
            return Ok(obj.into());
        }
    };
    set(&obj, "available", true);
    set(&obj, "backend", "webgpu");
    if let Some((device, _)) = ev.device() {
        if let Some(web) = device.as_webgpu() {
            let info =
                Reflect::get(web, &JsValue::from_str("adapterInfo")).unwrap_or(JsValue::NULL);
            for key in ["vendor", "architecture", "device", "description"] {
                let v = Reflect::get(&info, &JsValue::from_str(key)).unwrap_or(JsValue::NULL);
                set(&obj, key, v.as_string().unwrap_or_default());
            }
        }
        let limits = device.limits();
        let l = Object::new();
        set(
            &l,
            "maxStorageBufferBindingSize",
            limits.max_storage_buffer_binding_size as f64,
        );
        set(&l, "maxBufferSize", limits.max_buffer_size as f64);
        set(
            &l,
            "maxComputeWorkgroupsPerDimension",
            limits.max_compute_workgroups_per_dimension,
        );
        set(
            &l,
            "maxComputeInvocationsPerWorkgroup",
            limits.max_compute_invocations_per_workgroup,
        );
        set(&obj, "limits", l);
    }
    if let Some(g) = ev.gpu_info() {
        let fallback = g
            .adapter
            .as_ref()
            .is_some_and(|a| a.info.device_type == gaussdiv::wgpu::DeviceType::Cpu);
        set(&obj, "fallback", fallback);
        set(&obj, "f64", g.supports_f64);
        set(&obj, "flushesSubnormals", g.flushes_subnormals);
        set(&obj, "chunkPairs", g.chunk_pairs as f64);
        set(&obj, "hostChunkPairs", g.host_chunk_pairs as f64);
    }
    Ok(obj.into())
}

/// The tool's message, with its command-line hint in the API's terms.
fn tool_message(e: gaussdiv_cli::CliError) -> JsError {
    JsError::new(&e.message.replace(
        "use --on-invalid nan to write NaN for such rows",
        "use onInvalid: \"nan\" to get NaN for such rows",
    ))
}

/// Read a table the way the tool does — CSV (a header naming the columns,
/// as `gaussdiv eval`) or NPY (`name` ending in `.npy`) — into pairs (4
/// values per row) for [`evaluate`]. Bad input rejects with the tool's
/// message (row, column, value). `options.param` names the scale columns;
/// with `options.onInvalid = "nan"` invalid values are kept (and give NaN
/// rows in [`evaluate`]).
#[wasm_bindgen(js_name = parseTable)]
pub async fn parse_table(
    bytes: Vec<u8>,
    name: String,
    options: JsValue,
) -> Result<Vec<f32>, JsError> {
    let o = options::read(&options, &[Metric::CrossEntropy, Metric::Kl])?;
    let format = match Format::of(Some(std::path::Path::new(&name))) {
        f @ (Format::Csv | Format::Npy) => f,
        _ => {
            return Err(JsError::new(
                "Parquet and Arrow files are not read in the browser; use CSV or NPY",
            ))
        }
    };
    let reject = o.on_invalid == gaussdiv::OnInvalid::Error;
    let mut source = source_from_reader(
        Box::new(std::io::Cursor::new(bytes)),
        name,
        format,
        reject,
        o.param,
    )
    .map_err(tool_message)?;
    let mut all: Vec<f32> = Vec::new();
    let mut rows = Rows::F32(Vec::new());
    loop {
        let n = source.read(1 << 16, &mut rows).map_err(tool_message)?;
        if n == 0 {
            break;
        }
        if let Rows::F32(v) = &rows {
            all.extend_from_slice(bytemuck::cast_slice(v));
        }
    }
    Ok(all)
}

/// Results as CSV text, as the tool writes them: a header of the measure
/// names (`options.metrics`, default `["cross_entropy", "kl"]`) and each
/// value in the shortest form that reads back to the same f32.
#[wasm_bindgen(js_name = toCsv)]
pub fn to_csv(results: Vec<f32>, options: JsValue) -> Result<String, JsError> {
    let o = options::read(&options, &[Metric::CrossEntropy, Metric::Kl])?;
    let k = o.metrics.len();
    if k == 0 || !results.len().is_multiple_of(k) {
        return Err(JsError::new(&format!(
            "results hold {} values, not a multiple of {k} measures",
            results.len()
        )));
    }
    let names: Vec<&str> = o.metrics.iter().map(|m| m.name()).collect();
    let mut s = String::with_capacity(results.len() * 12 + 64);
    s.push_str(&names.join(","));
    s.push('\n');
    let mut buf = ryu::Buffer::new();
    for row in results.chunks_exact(k) {
        for (j, v) in row.iter().enumerate() {
            if j > 0 {
                s.push(',');
            }
            if v.is_nan() {
                s.push_str("NaN");
            } else if v.is_infinite() {
                s.push_str(if *v > 0.0 { "inf" } else { "-inf" });
            } else {
                s.push_str(buf.format_finite(*v));
            }
        }
        s.push('\n');
    }
    Ok(s)
}
