//! The options object of the JS API (`{ metrics, param, backend, onInvalid,
//! chunkPairs }`), read field by field with a clear error for every bad value.

use gaussdiv::{Metric, Metrics, OnInvalid, Param};
use js_sys::{Array, Reflect};
use wasm_bindgen::{JsError, JsValue};

/// Which backend a call asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Choice {
    /// WebGPU.
    Gpu,
    /// The CPU path in wasm.
    Cpu,
    /// WebGPU when the browser gives an adapter, else the CPU (the default).
    Default,
}

/// One call's options.
#[derive(Clone, Debug)]
pub(crate) struct CallOptions {
    /// The measures in the order asked for (the output's column order).
    pub metrics: Vec<Metric>,
    pub param: Param,
    pub backend: Choice,
    pub on_invalid: OnInvalid,
    /// Pairs per GPU chunk (default: as large as the device allows).
    pub chunk_pairs: Option<u64>,
}

impl CallOptions {
    /// The selected measures as a set (canonical order).
    pub fn set(&self) -> Metrics {
        Metrics::new(&self.metrics).unwrap_or(Metrics::CE_KL)
    }

    /// For each requested measure, its column in the library's canonical
    /// output order.
    pub fn columns(&self) -> Vec<usize> {
        let set = self.set();
        self.metrics
            .iter()
            .map(|m| set.iter().position(|x| x == *m).unwrap_or(0))
            .collect()
    }
}

/// `obj[key]`, or `None` when it (or `obj`) is undefined or null; `what`
/// names `obj` in the errors (`"options"`, `"input"`).
pub(crate) fn field(obj: &JsValue, what: &str, key: &str) -> Result<Option<JsValue>, JsError> {
    if obj.is_undefined() || obj.is_null() {
        return Ok(None);
    }
    if !obj.is_object() {
        return Err(JsError::new(&format!("{what} must be an object")));
    }
    let v = Reflect::get(obj, &JsValue::from_str(key))
        .map_err(|_| JsError::new(&format!("{what}.{key} could not be read")))?;
    Ok(if v.is_undefined() || v.is_null() {
        None
    } else {
        Some(v)
    })
}

fn get(obj: &JsValue, key: &str) -> Result<Option<JsValue>, JsError> {
    field(obj, "options", key)
}

fn string(obj: &JsValue, key: &str) -> Result<Option<String>, JsError> {
    match get(obj, key)? {
        None => Ok(None),
        Some(v) => v
            .as_string()
            .map(Some)
            .ok_or_else(|| JsError::new(&format!("options.{key} must be a string"))),
    }
}

/// A measure's name, as the tool spells it.
pub(crate) fn metric(name: &str) -> Result<Metric, JsError> {
    name.parse::<Metric>().map_err(|_| {
        let all: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        JsError::new(&format!(
            "unknown metric {name:?}; the metrics are {}",
            all.join(", ")
        ))
    })
}

/// Read `options` (undefined or null: the defaults). `default_metrics`
/// applies when `options.metrics` is absent; `options.metric` (one name) is
/// accepted too.
pub(crate) fn read(options: &JsValue, default_metrics: &[Metric]) -> Result<CallOptions, JsError> {
    let mut metrics = Vec::new();
    if let Some(v) = get(options, "metrics")? {
        if !Array::is_array(&v) {
            return Err(JsError::new("options.metrics must be an array of names"));
        }
        for item in Array::from(&v).iter() {
            let name = item
                .as_string()
                .ok_or_else(|| JsError::new("options.metrics must hold strings"))?;
            let m = metric(&name)?;
            if metrics.contains(&m) {
                return Err(JsError::new(&format!("metric {name:?} named twice")));
            }
            metrics.push(m);
        }
        if metrics.is_empty() {
            return Err(JsError::new("options.metrics is empty"));
        }
    } else if let Some(name) = string(options, "metric")? {
        metrics.push(metric(&name)?);
    } else {
        metrics.extend_from_slice(default_metrics);
    }
    let param = match string(options, "param")? {
        None => Param::Std,
        Some(p) => p.parse::<Param>().map_err(|_| {
            JsError::new(&format!(
                "unknown param {p:?}; use std, var, logstd, logvar or precision"
            ))
        })?,
    };
    let backend = match string(options, "backend")?.as_deref() {
        None | Some("auto") => Choice::Default,
        Some("gpu") => Choice::Gpu,
        Some("cpu") => Choice::Cpu,
        Some(b) => {
            return Err(JsError::new(&format!(
                "unknown backend {b:?}; use \"gpu\" or \"cpu\""
            )))
        }
    };
    let on_invalid = match string(options, "onInvalid")?.as_deref() {
        None | Some("error") => OnInvalid::Error,
        Some("nan") => OnInvalid::Nan,
        Some(o) => {
            return Err(JsError::new(&format!(
                "unknown onInvalid {o:?}; use \"error\" or \"nan\""
            )))
        }
    };
    let chunk_pairs = match get(options, "chunkPairs")? {
        None => None,
        Some(v) => match v.as_f64() {
            Some(n) if n >= 1.0 && n.fract() == 0.0 && n <= 9.0e15 => Some(n as u64),
            _ => {
                return Err(JsError::new(
                    "options.chunkPairs must be a positive integer",
                ))
            }
        },
    };
    Ok(CallOptions {
        metrics,
        param,
        backend,
        on_invalid,
        chunk_pairs,
    })
}
