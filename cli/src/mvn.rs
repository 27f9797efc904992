//! `gaussdiv eval PAIRS.npz`: full-covariance pairs (docs/ARCHITECTURE.md
//! §5 and §9). The NPZ holds `mu1`, `mu2` of shape (N, d) and, per side, one
//! of `cov1|scale_tril1|precision1` and `cov2|scale_tril2|precision2` of
//! shape (N, d, d), float32 or float64, C order (`np.savez` or
//! `np.savez_compressed`). The output is (N, k) in the order of `--metrics`,
//! written through the same sinks as `eval` (CSV, NPY, Parquet, Arrow).
//! `--verify` checks every value against the CPU f64 evaluation of the same
//! pairs (`gaussdiv::verify_mvn`, the bounds of issue 15) and prints the
//! report as `eval --verify` does.

use super::eval::{check_gpu_f64, evaluator_for, parse_metrics};
use super::npy::{self, shape_text};
use super::output::{create_sink, Values};
use super::{BackendArg, CliError, EvalArgs, OnInvalidArg, ParamArg, PrecisionArg};
use gaussdiv::{
    Backend, Batch, Covariance, Evaluator, Float, MvnPairs, OnInvalid, Request, Tolerance,
    VerifyReport,
};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// Values evaluated per call to the library (bounds the output held twice).
const CHUNK_VALUES: usize = 1 << 22;

/// One array of the NPZ, converted to the working precision.
struct Array<T> {
    name: String,
    shape: Vec<u64>,
    values: Vec<T>,
}

/// The working precision of a read: values are converted from the file's
/// dtype (f64 → f32 rounds to nearest).
trait Load: Float {
    fn from_f64(x: f64) -> Self;
    /// Results of this precision as the sinks take them.
    fn values(v: Vec<Self>) -> Values;
}

impl Load for f32 {
    fn from_f64(x: f64) -> f32 {
        x as f32
    }
    fn values(v: Vec<f32>) -> Values {
        Values::F32(v)
    }
}

impl Load for f64 {
    fn from_f64(x: f64) -> f64 {
        x
    }
    fn values(v: Vec<f64>) -> Values {
        Values::F64(v)
    }
}

/// The forms a side's matrices may take, by array name suffix.
const FORMS: [&str; 3] = ["cov", "scale_tril", "precision"];

/// Whether `path` names an NPZ archive (by extension).
pub fn is_npz(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("npz"))
}

/// Options of `eval` that do not apply to full-covariance pairs.
fn check_options(args: &EvalArgs) -> Result<(), CliError> {
    let refuse = |what: &str, why: &str| {
        Err(CliError::input(format!(
            "{what} does not apply to full-covariance pairs (NPZ input): {why}"
        )))
    };
    if args.param != ParamArg::Std {
        return refuse(
            "--param",
            "each side's form is the name of its array (cov, scale_tril or precision)",
        );
    }
    if args.columns.is_some() {
        return refuse("--columns", "the arrays are found by name");
    }
    if args.keep.is_some() || args.keep_all {
        return refuse("--keep", "the output holds the measures only");
    }
    if args.gradients {
        return refuse(
            "--gradients",
            "gradients are available for univariate pairs",
        );
    }
    if args.dims.is_some() {
        return refuse("--dims", "the dimension is the arrays' last axis");
    }
    Ok(())
}

pub fn run(args: &EvalArgs, path: &Path) -> Result<u8, CliError> {
    check_options(args)?;
    let (wanted, set, order) = parse_metrics(&args.metrics)?;
    let names: Vec<&str> = wanted.iter().map(|m| m.name()).collect();
    let on_invalid = match args.on_invalid {
        OnInvalidArg::Error => OnInvalid::Error,
        OnInvalidArg::Nan => OnInvalid::Nan,
    };
    let request = Request::measures(set).with_on_invalid(on_invalid);
    let f64_out = args.precision == PrecisionArg::F64;
    // `gpu`: the kernel for pairs far apart, the CPU mirror for the rest
    // (docs/ARCHITECTURE.md §9); `auto` keeps these pairs on the CPU, as the
    // library's Auto does.
    let evaluator = if args.backend == BackendArg::Gpu {
        let ev = evaluator_for(BackendArg::Gpu)?;
        if f64_out {
            check_gpu_f64(&ev)?;
        }
        ev
    } else {
        Evaluator::new(Backend::Cpu)?
    };
    let sink = create_sink(args.output.as_deref(), &names, f64_out, &[])?;
    let label = path.display().to_string();
    let report = if f64_out {
        evaluate(
            &evaluator,
            &read_npz::<f64>(path, &label)?,
            &request,
            &order,
            sink,
            args.verify,
        )?
    } else {
        evaluate(
            &evaluator,
            &read_npz::<f32>(path, &label)?,
            &request,
            &order,
            sink,
            args.verify,
        )?
    };
    if let Some(report) = report {
        eprint!("{report}");
        if !report.passed() {
            return Ok(1);
        }
    }
    Ok(0)
}

/// The arrays of one NPZ, checked against each other.
struct Pairs<T> {
    n: usize,
    d: usize,
    mu1: Array<T>,
    mu2: Array<T>,
    m1: Array<T>,
    m2: Array<T>,
}

impl<T: Load> Pairs<T> {
    fn form(a: &Array<T>, range: std::ops::Range<usize>) -> Covariance<'_, T> {
        let v = a.values.get(range).unwrap_or_default();
        if a.name.starts_with("scale_tril") {
            Covariance::ScaleTril(v)
        } else if a.name.starts_with("precision") {
            Covariance::Precision(v)
        } else {
            Covariance::Cov(v)
        }
    }

    /// Pairs `[start, end)` as a library batch.
    fn batch(&self, start: usize, end: usize) -> MvnPairs<'_, T> {
        let (d, dd) = (self.d, self.d * self.d);
        MvnPairs {
            dims: d,
            mu1: self.mu1.values.get(start * d..end * d).unwrap_or_default(),
            cov1: Self::form(&self.m1, start * dd..end * dd),
            mu2: self.mu2.values.get(start * d..end * d).unwrap_or_default(),
            cov2: Self::form(&self.m2, start * dd..end * dd),
        }
    }
}

/// Evaluates the pairs chunk by chunk into `sink`; with `verify`, the
/// report of every chunk against the CPU f64 reference, merged.
fn evaluate<T: Load>(
    evaluator: &Evaluator,
    pairs: &Pairs<T>,
    request: &Request,
    order: &[usize],
    mut sink: Box<dyn super::output::Sink>,
    verify: bool,
) -> Result<Option<VerifyReport>, CliError> {
    let tolerance = Tolerance::mvn(T::PRECISION);
    let mut report = verify.then(|| VerifyReport::empty(tolerance));
    let k = request.values_per_pair();
    let per_chunk = (CHUNK_VALUES / pairs.d.saturating_mul(pairs.d).max(k)).max(1);
    let mut start = 0;
    while start < pairs.n {
        let end = pairs.n.min(start + per_chunk);
        let mut out = vec![T::default(); (end - start) * k];
        evaluator
            .evaluate(Batch::Mvn(pairs.batch(start, end)), request, &mut out)
            .map_err(|e| match e {
                // The chunk's index made the file's.
                gaussdiv::Error::InvalidMatrix {
                    index,
                    array,
                    reason,
                } => gaussdiv::Error::InvalidMatrix {
                    index: start + index,
                    array,
                    reason,
                },
                e => e,
            })?;
        if let Some(r) = report.as_mut() {
            let chunk = gaussdiv::verify_mvn(pairs.batch(start, end), request, &out, tolerance)?;
            r.merge(&chunk, start);
        }
        sink.write(&T::values(out), k, order, None, false)?;
        start = end;
    }
    sink.finish()?;
    Ok(report)
}

/// Reads the NPZ at `path`: finds the four arrays and checks their shapes.
fn read_npz<T: Load>(path: &Path, label: &str) -> Result<Pairs<T>, CliError> {
    let file = File::open(path).map_err(|e| CliError::input(format!("{label}: {e}")))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| {
        CliError::input(format!(
            "{label}: not an NPZ archive (np.savez or np.savez_compressed): {e}"
        ))
    })?;
    let names: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.ok())
        .map(|n| n.strip_suffix(".npy").unwrap_or(&n).to_string())
        .collect();
    let found = || names.join(", ");
    let mut take = |name: &str| -> Result<Array<T>, CliError> {
        let mut f = zip
            .by_name(&format!("{name}.npy"))
            .map_err(|e| CliError::input(format!("{label}: array {name}: {e}")))?;
        read_array(&mut f, &format!("{label}: array {name}"), name)
    };
    let matrices = |side: u8| -> Result<String, CliError> {
        let present: Vec<String> = FORMS
            .iter()
            .map(|f| format!("{f}{side}"))
            .filter(|n| names.contains(n))
            .collect();
        match present.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(CliError::input(format!(
                "{label}: no matrices for side {side}: expected one array named cov{side}, \
                 scale_tril{side} or precision{side} (found: {})",
                found()
            ))),
            many => Err(CliError::input(format!(
                "{label}: side {side} has more than one matrix array ({}); keep one",
                many.join(", ")
            ))),
        }
    };
    for mu in ["mu1", "mu2"] {
        if !names.iter().any(|n| n == mu) {
            return Err(CliError::input(format!(
                "{label}: no array named {mu} (found: {})",
                found()
            )));
        }
    }
    let (n1, n2) = (matrices(1)?, matrices(2)?);
    let mu1 = take("mu1")?;
    let mu2 = take("mu2")?;
    let m1 = take(&n1)?;
    let m2 = take(&n2)?;
    let (n, d) = match mu1.shape.as_slice() {
        [n, d] if *d >= 1 => (*n, *d),
        _ => {
            return Err(CliError::input(format!(
                "{label}: mu1 must have shape (N, d) with d ≥ 1, found {}",
                shape_text(&mu1.shape)
            )))
        }
    };
    if mu2.shape != [n, d] {
        return Err(CliError::input(format!(
            "{label}: mu2 has shape {} but mu1 has {}",
            shape_text(&mu2.shape),
            shape_text(&mu1.shape)
        )));
    }
    for m in [&m1, &m2] {
        if m.shape != [n, d, d] {
            return Err(CliError::input(format!(
                "{label}: {} has shape {}; with mu1 of shape {} it must be ({n}, {d}, {d})",
                m.name,
                shape_text(&m.shape),
                shape_text(&mu1.shape)
            )));
        }
    }
    let too_large = || CliError::input(format!("{label}: ({n}, {d}) is too large"));
    Ok(Pairs {
        n: usize::try_from(n).map_err(|_| too_large())?,
        d: usize::try_from(d).map_err(|_| too_large())?,
        mu1,
        mu2,
        m1,
        m2,
    })
}

/// One NPY member: header, then its values converted to `T`.
fn read_array<T: Load>(
    reader: &mut dyn Read,
    label: &str,
    name: &str,
) -> Result<Array<T>, CliError> {
    let dict = npy::read_header_dict(reader, label)?;
    let h = npy::parse_array_dict(&dict, label)?;
    let count = h
        .shape
        .iter()
        .try_fold(1u64, |a, &b| a.checked_mul(b))
        .and_then(|c| usize::try_from(c).ok())
        .filter(|c| c.checked_mul(8).is_some())
        .ok_or_else(|| {
            CliError::input(format!(
                "{label}: shape {} is too large",
                shape_text(&h.shape)
            ))
        })?;
    let size = if h.f64 { 8 } else { 4 };
    let mut bytes = Vec::new();
    reader
        .take((count * size) as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::input(format!("{label}: cannot read the values: {e}")))?;
    if bytes.len() != count * size {
        return Err(CliError::input(format!(
            "{label}: truncated: shape {} needs {} bytes of values, found {}",
            shape_text(&h.shape),
            count * size,
            bytes.len()
        )));
    }
    let values: Vec<T> = if h.f64 {
        bytes
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                T::from_f64(if h.big_endian {
                    f64::from_be_bytes(b)
                } else {
                    f64::from_le_bytes(b)
                })
            })
            .collect()
    } else {
        bytes
            .chunks_exact(4)
            .map(|c| {
                let mut b = [0u8; 4];
                b.copy_from_slice(c);
                T::from_f64(f64::from(if h.big_endian {
                    f32::from_be_bytes(b)
                } else {
                    f32::from_le_bytes(b)
                }))
            })
            .collect()
    };
    Ok(Array {
        name: name.to_string(),
        shape: h.shape,
        values,
    })
}
