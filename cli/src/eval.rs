//! `gaussdiv eval`: stream pairs through the evaluator —
//! read ‖ evaluate ‖ write on three threads, chunk by chunk, with bounded memory.

use super::columns::{ColumnMap, KeepSpec, Kept};
use super::io::{self, Rows, Values, CHUNK_ROWS};
use super::{BackendArg, CliError, EvalArgs, OnInvalidArg, PrecisionArg, ProgressArg};
use gaussdiv::{
    Backend, Batch, Evaluator, Metric, Metrics, OnInvalid, Param, Request, Tolerance, VerifyReport,
};
use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::Instant;

/// The metrics in the user's order, their set, and each one's column in a computed row.
pub fn parse_metrics(list: &str) -> Result<(Vec<Metric>, Metrics, Vec<usize>), CliError> {
    let mut wanted = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let m: Metric = name
            .parse()
            .map_err(|e: gaussdiv::Error| CliError::input(format!("--metrics: {e}")))?;
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

/// The evaluator for `backend`, both precisions. `--backend gpu` without an
/// adapter is exit 3; `auto` falls back to the CPU and says so on stderr.
pub fn evaluator_for(backend: BackendArg) -> Result<Evaluator, CliError> {
    match backend {
        BackendArg::Cpu => Ok(Evaluator::new(Backend::Cpu)?),
        BackendArg::Gpu => Evaluator::new(Backend::Gpu).map_err(|e| CliError {
            code: 3,
            message: format!("--backend gpu: {e}"),
        }),
        BackendArg::Auto => {
            let ev = Evaluator::new(Backend::Auto)?;
            if let Some(why) = ev.fallback_reason() {
                eprintln!("gaussdiv: {why}; falling back to the CPU");
            }
            Ok(ev)
        }
    }
}

/// `--backend gpu --precision f64` needs the f64 device features: exit 3 without them.
pub fn check_gpu_f64(evaluator: &Evaluator) -> Result<(), CliError> {
    match evaluator.gpu_info() {
        Some(info) if evaluator.backend() == Backend::Gpu && !info.supports_f64 => Err(CliError {
            code: 3,
            message: format!(
                "--backend gpu --precision f64: the adapter {} lacks the device features \
                 SHADER_F64 and SHADER_INT64 that f64 on the GPU needs (use --backend cpu or auto)",
                info.adapter.map(|a| a.to_string()).unwrap_or_default()
            ),
        }),
        _ => Ok(()),
    }
}

/// What the writer thread receives.
enum ToWriter {
    /// The results of a chunk, its kept columns, and whether it ends a group.
    Chunk(Values, Option<Kept>, bool),
    /// Everything went well: complete the output.
    Commit,
}

/// Progress on standard error: a bar on a terminal, plain lines (at most
/// one a second, and a last one) when forced on a non-terminal.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    lines: bool,
    size: Option<u64>,
    started: Instant,
    last_line: Instant,
    rows: u64,
    bytes: u64,
}

impl Progress {
    fn new(mode: ProgressArg, size: Option<u64>) -> Progress {
        let tty = std::io::stderr().is_terminal();
        let on = match mode {
            ProgressArg::Always => true,
            ProgressArg::Never => false,
            ProgressArg::Auto => tty,
        };
        let bar = (on && tty).then(|| {
            let target = indicatif::ProgressDrawTarget::stderr();
            let (b, template) = match size {
                Some(total) => (
                    indicatif::ProgressBar::with_draw_target(Some(total), target),
                    "{bar:30} {percent:>3}% {msg} ETA {eta}",
                ),
                None => (
                    indicatif::ProgressBar::with_draw_target(None, target),
                    "{spinner} {msg}",
                ),
            };
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                b.set_style(style);
            }
            b
        });
        let now = Instant::now();
        Progress {
            bar,
            lines: on && !tty,
            size,
            started: now,
            last_line: now,
            rows: 0,
            bytes: 0,
        }
    }

    fn message(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let rate = self.rows as f64 / secs;
        let mut m = format!("{} rows, {:.2} M rows/s", self.rows, rate / 1e6);
        if let Some(total) = self.size.filter(|t| *t > 0) {
            let done = (self.bytes as f64 / total as f64).min(1.0);
            let eta = if done > 0.0 {
                secs * (1.0 - done) / done
            } else {
                0.0
            };
            m.push_str(&format!(", {:.0}%, ETA {:.0} s", done * 100.0, eta));
        }
        m
    }

    fn update(&mut self, rows: usize, bytes: u64) {
        self.rows += rows as u64;
        self.bytes = bytes;
        if let Some(b) = &self.bar {
            b.set_position(bytes);
            let secs = self.started.elapsed().as_secs_f64().max(1e-9);
            b.set_message(format!(
                "{} rows, {:.2} M rows/s",
                self.rows,
                self.rows as f64 / secs / 1e6
            ));
        } else if self.lines && self.last_line.elapsed().as_secs_f64() >= 1.0 {
            self.last_line = Instant::now();
            eprintln!("gaussdiv: {}", self.message());
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        } else if self.lines {
            eprintln!("gaussdiv: done: {}", self.message());
        }
    }
}

pub fn run(args: &EvalArgs) -> Result<u8, CliError> {
    if let Some(path) = args.input.as_deref().filter(|p| super::mvn::is_npz(p)) {
        return super::mvn::run(args, path);
    }
    let (wanted, set, order) = parse_metrics(&args.metrics)?;
    let on_invalid = match args.on_invalid {
        OnInvalidArg::Error => OnInvalid::Error,
        OnInvalidArg::Nan => OnInvalid::Nan,
    };
    let f64_mode = args.precision == PrecisionArg::F64;
    // Input first, so that bad input and usage errors come before any GPU work.
    let param: Param = args.param.into();
    // The readers reject invalid rows (naming row and column) under the
    // error policy, so the evaluator's own policy is NaN.
    let request = if args.gradients {
        Request::gradients(set)
    } else {
        Request::measures(set)
    }
    .with_param(param)
    .with_on_invalid(OnInvalid::Nan);
    let read_options = io::ReadOptions {
        reject_invalid: on_invalid == OnInvalid::Error,
        param,
        columns: match &args.columns {
            Some(spec) => ColumnMap::parse(spec, param)?,
            None => ColumnMap::default(),
        },
        keep: KeepSpec::parse(args.keep.as_deref(), args.keep_all)?,
    };
    if args.dims.is_some() && read_options.keep.is_some() {
        return Err(CliError::input(
            "--keep cannot be combined with --dims (one output row per D input rows)",
        ));
    }
    if args.dims.is_some() && io::Format::of(args.input.as_deref()).is_table() {
        return Err(CliError::input(
            "--dims needs CSV or NPY input (diagonal multivariate rows stay in NPY)",
        ));
    }
    let input = io::open_source(args.input.as_deref(), &read_options)?;
    let kept_columns = input.source.kept_columns();
    let dims = args.dims.map_or(1, |d| d as usize);
    if args.gradients && args.verify && f64_mode {
        return Err(CliError::input(
            "--gradients --verify checks f32 results against the f64 gradients; in f64 the \
             gradients are that reference (drop --verify or use --precision f32)",
        ));
    }
    if args.dims.is_some() && (args.gradients || args.verify) {
        return Err(CliError::input(
            "--dims cannot be combined with --gradients or --verify",
        ));
    }
    let evaluator = evaluator_for(args.backend)?;
    if f64_mode {
        check_gpu_f64(&evaluator)?;
    }
    // The library's own check of the request (measures with gradients), on
    // an empty batch: a usage error before any input is read.
    evaluator
        .evaluate::<f32>(Batch::Pairs(&[]), &request, &mut [])
        .map_err(|e| CliError::input(format!("--gradients: {e}")))?;
    let k = request.values_per_pair();
    let (names, order) = if args.gradients {
        gradient_columns(&wanted, set)
    } else {
        (wanted.iter().map(|m| m.name().to_string()).collect(), order)
    };
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let sink = io::create_sink(args.output.as_deref(), &names, f64_mode, &kept_columns)?;
    let mut progress = Progress::new(args.progress, input.size);
    let bytes_read = input.bytes_read.clone();
    let source = input.source;
    let mut report: Option<VerifyReport> = None;

    // Reader: parse chunks ahead of the evaluator. Not joined: after an error
    // the tool reports it at once, even if the reader is blocked on a slow
    // standard input (the thread ends with the process).
    let (rows_tx, rows_rx) = sync_channel::<FromReader>(1);
    let (free_rows_tx, free_rows_rx) = sync_channel::<Rows>(2);
    std::thread::Builder::new()
        .name("gaussdiv-reader".into())
        .spawn(move || read_loop(source, f64_mode, dims, rows_tx, free_rows_rx))
        .map_err(|e| CliError::input(format!("cannot start the reader thread: {e}")))?;

    let outcome = std::thread::scope(|s| -> Result<(), CliError> {
        let (out_tx, out_rx) = sync_channel::<ToWriter>(1);
        let (free_out_tx, free_out_rx) = sync_channel::<Values>(2);

        // Writer: format and write behind the evaluator; completes the output
        // only on Commit (otherwise the temporary file is dropped).
        let order = &order;
        let writer = s.spawn(move || -> Result<(), CliError> {
            let mut sink = sink;
            for msg in out_rx {
                match msg {
                    ToWriter::Chunk(values, kept, group_end) => {
                        sink.write(&values, k, order, kept.as_ref(), group_end)?;
                        let _ = free_out_tx.try_send(values);
                    }
                    ToWriter::Commit => return sink.finish(),
                }
            }
            Ok(()) // aborted: nothing is renamed into place
        });

        let evaluated = (|| -> Result<(), CliError> {
            let mut offset = 0usize;
            loop {
                let (rows, kept, group_end) = match rows_rx.recv() {
                    Ok(FromReader::Rows(rows, kept, group_end)) => (rows, kept, group_end),
                    Ok(FromReader::End) => break,
                    Ok(FromReader::Failed(e)) => return Err(e),
                    // Never commit an output the reader did not finish.
                    Err(_) => return Err(CliError::input("the reader stopped unexpectedly")),
                };
                let n = rows.len();
                let mut values = free_out_rx.try_recv().unwrap_or(if f64_mode {
                    Values::F64(Vec::new())
                } else {
                    Values::F32(Vec::new())
                });
                let batch_report = evaluate(
                    &rows,
                    &mut values,
                    args.dims.map(|_| dims),
                    &request,
                    &evaluator,
                    args.verify,
                )?;
                if let Some(r) = batch_report {
                    report
                        .get_or_insert_with(|| VerifyReport::empty(r.tolerance))
                        .merge(&r, offset);
                }
                offset += n;
                progress.update(n, bytes_read.load(Ordering::Relaxed));
                if out_tx
                    .send(ToWriter::Chunk(values, kept, group_end))
                    .is_err()
                {
                    return Ok(()); // the writer failed: its error is reported below
                }
                let _ = free_rows_tx.try_send(rows);
            }
            if out_tx.send(ToWriter::Commit).is_err() {
                return Ok(());
            }
            Ok(())
        })();
        drop(out_tx);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(CliError::input("the writer thread panicked")));
        evaluated?;
        written
    });
    progress.finish();
    outcome?;

    if args.verify {
        let report = report.unwrap_or_else(|| VerifyReport::empty(Tolerance::CPU_F32));
        eprint!("{report}");
        if !report.passed() {
            return Ok(1);
        }
    }
    Ok(0)
}

/// What the reader thread sends.
enum FromReader {
    /// A chunk, its kept columns, and whether it ends a group of the input.
    Rows(Rows, Option<Kept>, bool),
    /// The input is exhausted: everything has been sent.
    End,
    Failed(CliError),
}

/// Chunks hold whole groups of `dims` rows (a diagonal pair), so that no
/// pair is split between chunks.
fn read_loop(
    mut source: Box<dyn io::Source>,
    f64_mode: bool,
    dims: usize,
    tx: SyncSender<FromReader>,
    free: Receiver<Rows>,
) {
    let chunk = (CHUNK_ROWS / dims).max(1) * dims;
    let mut total = 0usize;
    loop {
        // Reserve at most a normal chunk: a huge D grows with the input only.
        let reserve = chunk.min(CHUNK_ROWS);
        let mut rows = free.try_recv().unwrap_or(if f64_mode {
            Rows::F64(Vec::with_capacity(reserve))
        } else {
            Rows::F32(Vec::with_capacity(reserve))
        });
        let msg = match read_full(source.as_mut(), chunk, &mut rows) {
            Ok(0) => FromReader::End,
            Ok(n) if n % dims != 0 => FromReader::Failed(CliError::input(format!(
                "the input has {} rows, not a multiple of --dims {dims} (row {} starts an \
                 incomplete pair)",
                total + n,
                total + n - n % dims + 1
            ))),
            Ok(n) => {
                total += n;
                FromReader::Rows(rows, source.take_kept(), source.group_end())
            }
            Err(e) => FromReader::Failed(e),
        };
        let last = !matches!(msg, FromReader::Rows(..));
        if tx.send(msg).is_err() || last {
            return;
        }
    }
}

/// Evaluate one chunk into `values`; the chunk's verification report if asked for.
/// One chunk: `request` on its pairs (or, with `--dims`, its rows of `dims`
/// pairs) into `values`, in the chunk's precision; with `verify`, the
/// chunk's report against the CPU f64 reference.
fn evaluate(
    rows: &Rows,
    values: &mut Values,
    dims: Option<usize>,
    request: &Request,
    evaluator: &Evaluator,
    verify: bool,
) -> Result<Option<VerifyReport>, CliError> {
    match (rows, values) {
        (Rows::F32(pairs), Values::F32(flat)) => chunk(
            evaluator,
            pairs,
            dims,
            request,
            flat,
            verify,
            Tolerance::CPU_F32,
        ),
        (Rows::F64(pairs), Values::F64(flat)) => chunk(
            evaluator,
            pairs,
            dims,
            request,
            flat,
            verify,
            Tolerance::F64,
        ),
        _ => Err(CliError::input(
            "internal: precision mismatch between input and output buffers",
        )),
    }
}

/// [`evaluate`] in one precision; `cpu_tolerance` is the CPU path's bound
/// (f32 results from the GPU are held to [`Tolerance::GPU_F32`]).
fn chunk<T: gaussdiv::Float>(
    evaluator: &Evaluator,
    pairs: &[gaussdiv::GaussianPair<T>],
    dims: Option<usize>,
    request: &Request,
    flat: &mut Vec<T>,
    verify: bool,
    cpu_tolerance: Tolerance,
) -> Result<Option<VerifyReport>, CliError> {
    let k = request.values_per_pair();
    let batch = match dims {
        Some(dims) => Batch::Diagonal { pairs, dims },
        None => Batch::Pairs(pairs),
    };
    let rows = pairs.len() / dims.unwrap_or(1).max(1);
    flat.resize(rows * k, T::default());
    evaluator.evaluate(batch, request, flat)?;
    if !verify {
        return Ok(None);
    }
    let tol = if cpu_tolerance.precision == gaussdiv::Precision::F32
        && evaluator.uses_gpu_for(pairs.len())
    {
        Tolerance::GPU_F32
    } else {
        cpu_tolerance
    };
    Ok(Some(gaussdiv::verify(batch, request, flat, tol)?))
}

/// Column names and output order (positions in a computed row) of
/// `--gradients`: four columns per measure (∂/∂μ1, ∂/∂a1, ∂/∂μ2, ∂/∂a2), the
/// measures in the user's order; the library's rows hold them in canonical order.
fn gradient_columns(wanted: &[Metric], set: Metrics) -> (Vec<String>, Vec<usize>) {
    const PARTS: [&str; 4] = ["dmu1", "da1", "dmu2", "da2"];
    let mut names = Vec::new();
    let mut order = Vec::new();
    for m in wanted {
        let prefix = if *m == Metric::Kl { "dkl" } else { "dce" };
        let pos = set.iter().position(|x| x == *m).unwrap_or(0);
        for (j, v) in PARTS.iter().enumerate() {
            names.push(format!("{prefix}_{v}"));
            order.push(PARTS.len() * pos + j);
        }
    }
    (names, order)
}

/// Read up to `max` rows, joining short reads — but never across the end of
/// a group, nor with kept columns (whose reads are whole).
fn read_full(source: &mut dyn io::Source, max: usize, rows: &mut Rows) -> Result<usize, CliError> {
    let mut n = source.read(max, rows)?;
    if n == 0 || n == max || source.group_end() || !source.kept_columns().is_empty() {
        return Ok(n);
    }
    let mut more = match rows {
        Rows::F32(_) => Rows::F32(Vec::new()),
        Rows::F64(_) => Rows::F64(Vec::new()),
    };
    while n < max {
        let got = source.read(max - n, &mut more)?;
        if got == 0 {
            break;
        }
        match (&mut *rows, &more) {
            (Rows::F32(a), Rows::F32(b)) => a.extend_from_slice(b),
            (Rows::F64(a), Rows::F64(b)) => a.extend_from_slice(b),
            _ => {
                return Err(CliError::input(
                    "internal: precision mismatch while reading",
                ))
            }
        }
        n += got;
        if source.group_end() {
            break;
        }
    }
    Ok(n)
}
