//! `gaussdiv eval`: stream a CSV of pairs through the evaluator.

use super::io::{CsvOut, PairReader};
use super::{BackendArg, CliError, EvalArgs, OnInvalidArg, PrecisionArg};
use gaussdiv::verify::{verify_f64, verify_metrics};
use gaussdiv::{
    cpu, evaluator::AUTO_GPU_MIN_PAIRS, Divergences64, GpuEvaluator, GpuOptions, Metric, Metrics,
    OnInvalid, Tolerance, VerifyReport,
};

/// Rows per chunk: bounded memory whatever the file size.
const CHUNK_ROWS: usize = 1 << 20;

/// The metrics in the user's order, their set, and each one's column in a computed row.
fn parse_metrics(list: &str) -> Result<(Vec<Metric>, Metrics, Vec<usize>), CliError> {
    let mut wanted = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let m = Metric::from_name(name).ok_or_else(|| {
            let valid: Vec<_> = Metric::ALL.iter().map(|m| m.name()).collect();
            CliError::input(format!(
                "unknown metric {name:?} in --metrics (valid: {})",
                valid.join(", ")
            ))
        })?;
        if !wanted.contains(&m) {
            wanted.push(m);
        }
    }
    let set = Metrics::new(&wanted).ok_or_else(|| CliError::input("--metrics names no metric"))?;
    let order = wanted
        .iter()
        .map(|m| set.iter().position(|x| x == *m).unwrap_or(0))
        .collect();
    Ok((wanted, set, order))
}

pub fn run(args: &EvalArgs) -> Result<u8, CliError> {
    let (wanted, set, order) = parse_metrics(&args.metrics)?;
    let on_invalid = match args.on_invalid {
        OnInvalidArg::Error => OnInvalid::Error,
        OnInvalidArg::Nan => OnInvalid::Nan,
    };
    if args.precision == PrecisionArg::F64 && args.backend == BackendArg::Gpu {
        return Err(CliError::input(
            "--precision f64 runs on the CPU reference path; GPU f64 is not available yet \
             (use --backend cpu or auto)",
        ));
    }
    // Open input and output before any GPU work, so that usage errors come first.
    let mut reader = PairReader::open(args.input.as_deref(), on_invalid == OnInvalid::Error)?;
    let names: Vec<&str> = wanted.iter().map(|m| m.name()).collect();

    let gpu = match (args.precision, args.backend) {
        (PrecisionArg::F64, _) | (_, BackendArg::Cpu) => None,
        (PrecisionArg::F32, backend) => {
            // Rows were validated while parsing; the kernel writes NaN for the rest.
            let options = GpuOptions {
                on_invalid: OnInvalid::Nan,
                ..GpuOptions::default()
            };
            match GpuEvaluator::with_options(options) {
                Ok(g) => Some(g),
                Err(e) if backend == BackendArg::Gpu => {
                    return Err(CliError {
                        code: 3,
                        message: format!("--backend gpu: {e}"),
                    })
                }
                Err(e) => {
                    eprintln!("gaussdiv: no usable GPU ({e}); falling back to the CPU");
                    None
                }
            }
        }
    };

    let mut out = CsvOut::create(args.output.as_deref())?;
    out.header(&names)?;

    let k = set.len();
    let mut report: Option<VerifyReport> = None;
    let mut offset = 0usize;
    match args.precision {
        PrecisionArg::F32 => {
            let mut pairs = Vec::with_capacity(CHUNK_ROWS.min(1 << 16));
            let mut flat = Vec::new();
            loop {
                let n = reader.chunk_f32(CHUNK_ROWS, &mut pairs)?;
                if n == 0 {
                    break;
                }
                flat.resize(n * k, 0.0f32);
                let on_gpu = match &gpu {
                    Some(g) if args.backend == BackendArg::Gpu || n >= AUTO_GPU_MIN_PAIRS => {
                        g.evaluate_metrics_into(&pairs, set, &mut flat)?;
                        true
                    }
                    _ => {
                        cpu::evaluate_metrics_into(&pairs, set, &mut flat)?;
                        false
                    }
                };
                if args.verify {
                    let tol = if on_gpu {
                        Tolerance::GPU_F32
                    } else {
                        Tolerance::CPU_F32
                    };
                    let r = verify_metrics(&pairs, set, &flat, tol)?;
                    report
                        .get_or_insert_with(|| VerifyReport::empty(tol))
                        .merge(&r, offset);
                }
                out.rows(&flat, k, &order)?;
                offset += n;
            }
        }
        PrecisionArg::F64 => {
            let mut pairs = Vec::new();
            let mut full = Vec::new();
            let mut flat = Vec::new();
            loop {
                let n = reader.chunk_f64(CHUNK_ROWS, &mut pairs)?;
                if n == 0 {
                    break;
                }
                full.resize(n, Divergences64::default());
                cpu::evaluate_f64_into(&pairs, &mut full)?;
                if args.verify {
                    let r = verify_f64(&pairs, &full, Tolerance::F64)?;
                    report
                        .get_or_insert_with(|| VerifyReport::empty(Tolerance::F64))
                        .merge(&r, offset);
                }
                flat.clear();
                for d in &full {
                    let all = [d.cross_entropy, d.kl, d.entropy];
                    flat.extend(set.iter().map(|m| all[m.index()]));
                }
                out.rows(&flat, k, &order)?;
                offset += n;
            }
        }
    }
    out.finish()?;

    if args.verify {
        let report = report.unwrap_or_else(|| VerifyReport::empty(Tolerance::CPU_F32));
        eprint!("{report}");
        if !report.passed() {
            return Ok(1);
        }
    }
    Ok(0)
}
