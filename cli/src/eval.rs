//! `gaussdiv eval`: stream pairs through the evaluator —
//! read ‖ evaluate ‖ write on three threads, chunk by chunk, with bounded memory.

use super::io::{self, Rows, Values};
use super::{BackendArg, CliError, EvalArgs, OnInvalidArg, PrecisionArg, ProgressArg};
use gaussdiv::gradient;
use gaussdiv::verify::{gradient_error, gradient_scales, verify_f64_with, verify_with};
use gaussdiv::{
    cpu, Backend, EvalOptions, Evaluator, GpuEvaluator, GpuOptions, Metric, Metrics, OnInvalid,
    Param, Tolerance, VerifyReport,
};
use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::Instant;

/// Rows per chunk: memory stays bounded whatever the file size.
const CHUNK_ROWS: usize = 1 << 20;

/// The metrics in the user's order, their set, and each one's column in a computed row.
pub fn parse_metrics(list: &str) -> Result<(Vec<Metric>, Metrics, Vec<usize>), CliError> {
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

/// The evaluator for `backend` (f32). Callers validate while parsing, so
/// the evaluator's policy is NaN. `--backend gpu` without an adapter is exit 3;
/// `auto` falls back to the CPU and says so on stderr.
pub fn evaluator_for(backend: BackendArg) -> Result<Evaluator, CliError> {
    match backend {
        BackendArg::Cpu => Ok(Evaluator::with_policy(Backend::Cpu, OnInvalid::Nan)?),
        BackendArg::Gpu => {
            let options = GpuOptions {
                on_invalid: OnInvalid::Nan,
                ..GpuOptions::default()
            };
            match GpuEvaluator::with_options(options) {
                Ok(g) => Ok(Evaluator::from_gpu(g)),
                Err(e) => Err(CliError {
                    code: 3,
                    message: format!("--backend gpu: {e}"),
                }),
            }
        }
        BackendArg::Auto => {
            let ev = Evaluator::with_policy(Backend::Auto, OnInvalid::Nan)?;
            if ev.gpu().is_none() {
                let why = ev.fallback_reason().unwrap_or("no GPU");
                eprintln!("gaussdiv: {why}; falling back to the CPU");
            }
            Ok(ev)
        }
    }
}

/// The GPU evaluator for `--precision f64 --backend gpu`: exit 3 without an
/// adapter or without the device features the f64 kernel needs.
pub fn gpu_f64_evaluator() -> Result<GpuEvaluator, CliError> {
    let options = GpuOptions {
        on_invalid: OnInvalid::Nan,
        ..GpuOptions::default()
    };
    let gpu = GpuEvaluator::with_options(options).map_err(|e| CliError {
        code: 3,
        message: format!("--backend gpu: {e}"),
    })?;
    if !gpu.supports_f64() {
        let missing: Vec<&str> = gpu
            .missing_f64_features()
            .iter_names()
            .map(|(name, _)| name)
            .collect();
        let adapter = gpu.adapter().map(|a| a.to_string()).unwrap_or_default();
        return Err(CliError {
            code: 3,
            message: format!(
                "--backend gpu --precision f64: the adapter {adapter} lacks the device \
                 feature(s) {} that f64 on the GPU needs (use --backend cpu or auto)",
                missing.join(", ")
            ),
        });
    }
    Ok(gpu)
}

/// What the writer thread receives.
enum ToWriter {
    Chunk(Values),
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
    let (wanted, set, order) = parse_metrics(&args.metrics)?;
    let on_invalid = match args.on_invalid {
        OnInvalidArg::Error => OnInvalid::Error,
        OnInvalidArg::Nan => OnInvalid::Nan,
    };
    let f64_mode = args.precision == PrecisionArg::F64;
    // Input first, so that bad input and usage errors come before any GPU work.
    let param: Param = args.param.into();
    let options = EvalOptions::new(set, param);
    let input = io::open_source(args.input.as_deref(), on_invalid == OnInvalid::Error, param)?;
    // f64: the GPU kernel with `--backend gpu` (every measure and
    // parameterisation); `auto` and `cpu` use the CPU reference path (fast on
    // all cores, and the reference itself).
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
    let gpu64 = if f64_mode && args.backend == BackendArg::Gpu {
        if args.dims.is_some() {
            return Err(CliError::input(
                "--dims --precision f64 runs on the CPU (use --backend cpu or auto)",
            ));
        }
        if args.gradients {
            return Err(CliError::input(
                "--gradients --precision f64 runs on the CPU (use --backend cpu or auto)",
            ));
        }
        Some(gpu_f64_evaluator()?)
    } else {
        None
    };
    let evaluator = if f64_mode {
        None
    } else {
        Some(evaluator_for(args.backend)?)
    };
    let (names, order, k) = if args.gradients {
        gradient::check_metrics(set).map_err(|e| CliError::input(format!("--gradients: {e}")))?;
        gradient_columns(&wanted, set)
    } else {
        let names = wanted.iter().map(|m| m.name().to_string()).collect();
        (names, order, set.len())
    };
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let sink = io::create_sink(args.output.as_deref(), &names, f64_mode)?;
    let mut progress = Progress::new(args.progress, input.size);
    let bytes_read = input.bytes_read.clone();
    let mut grad_report: Option<GradReport> = None;
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
                    ToWriter::Chunk(values) => {
                        sink.write(&values, k, order)?;
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
                let rows = match rows_rx.recv() {
                    Ok(FromReader::Rows(rows)) => rows,
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
                if args.gradients {
                    let r =
                        evaluate_gradients(&rows, &mut values, options, evaluator.as_ref(), args)?;
                    if let Some(mut r) = r {
                        r.row += offset;
                        match &mut grad_report {
                            Some(g) => g.merge(r),
                            None => grad_report = Some(r),
                        }
                    }
                } else if args.dims.is_some() {
                    evaluate_diagonal(&rows, &mut values, dims, options, evaluator.as_ref())?;
                } else if let Some(r) = evaluate(
                    &rows,
                    &mut values,
                    options,
                    evaluator.as_ref(),
                    gpu64.as_ref(),
                    args,
                )? {
                    report
                        .get_or_insert_with(|| VerifyReport::empty(r.tolerance))
                        .merge(&r, offset);
                }
                offset += n;
                progress.update(n, bytes_read.load(Ordering::Relaxed));
                if out_tx.send(ToWriter::Chunk(values)).is_err() {
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

    if args.verify && args.gradients {
        return Ok(match grad_report {
            Some(r) => {
                eprintln!("{r}");
                if r.passed() {
                    0
                } else {
                    1
                }
            }
            None => {
                eprintln!("verify: no rows");
                0
            }
        });
    }
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
    Rows(Rows),
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
                FromReader::Rows(rows)
            }
            Err(e) => FromReader::Failed(e),
        };
        let last = !matches!(msg, FromReader::Rows(_));
        if tx.send(msg).is_err() || last {
            return;
        }
    }
}

/// Evaluate one chunk into `values`; the chunk's verification report if asked for.
fn evaluate(
    rows: &Rows,
    values: &mut Values,
    options: EvalOptions,
    evaluator: Option<&Evaluator>,
    gpu64: Option<&GpuEvaluator>,
    args: &EvalArgs,
) -> Result<Option<VerifyReport>, CliError> {
    let k = options.metrics.len();
    match (rows, values) {
        (Rows::F32(pairs), Values::F32(flat)) => {
            flat.resize(pairs.len() * k, 0.0);
            let on_gpu = match evaluator {
                Some(ev) => {
                    ev.evaluate_with(pairs, options, flat)?;
                    ev.uses_gpu_for(pairs.len())
                }
                None => {
                    cpu::evaluate_with(pairs, options, flat)?;
                    false
                }
            };
            if !args.verify {
                return Ok(None);
            }
            let tol = if on_gpu {
                Tolerance::GPU_F32
            } else {
                Tolerance::CPU_F32
            };
            Ok(Some(verify_with(pairs, options, flat, tol)?))
        }
        (Rows::F64(pairs), Values::F64(flat)) => {
            flat.resize(pairs.len() * k, 0.0);
            match gpu64 {
                Some(gpu) => gpu.evaluate_f64_with(pairs, options, flat)?,
                None => cpu::evaluate_f64_with(pairs, options, flat)?,
            }
            if !args.verify {
                return Ok(None);
            }
            Ok(Some(verify_f64_with(pairs, options, flat, Tolerance::F64)?))
        }
        _ => Err(CliError::input(
            "internal: precision mismatch between input and output buffers",
        )),
    }
}

/// Column names, output order (positions in a computed row) and values per
/// computed row of `--gradients`: four columns per measure in the user's order.
fn gradient_columns(wanted: &[Metric], set: Metrics) -> (Vec<String>, Vec<usize>, usize) {
    let mut names = Vec::new();
    let mut order = Vec::new();
    for m in wanted {
        let prefix = if *m == Metric::Kl { "dkl" } else { "dce" };
        let pos = set.iter().position(|x| x == *m).unwrap_or(0);
        for (j, v) in ["dmu1", "da1", "dmu2", "da2"].iter().enumerate() {
            names.push(format!("{prefix}_{v}"));
            order.push(gradient::PER_MEASURE * pos + j);
        }
    }
    (names, order, gradient::values_per_pair(set))
}

/// `--verify --gradients`: the worst value against the CPU f64 gradients
/// (error of `verify::gradient_error`, relative to the value or, for
/// ∂/∂a2, to its terms).
struct GradReport {
    values: u64,
    worst: f64,
    row: usize,
    got: f64,
    want: f64,
    bound: f64,
}

impl GradReport {
    fn merge(&mut self, other: GradReport) {
        self.values += other.values;
        self.bound = self.bound.max(other.bound);
        if other.worst > self.worst || other.worst.is_nan() {
            self.worst = other.worst;
            self.row = other.row;
            self.got = other.got;
            self.want = other.want;
        }
    }

    fn passed(&self) -> bool {
        self.worst <= self.bound
    }
}

impl std::fmt::Display for GradReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "verify gradients: {} values, worst error {:.3e} (bound {:.0e}) at row {}: got {:e}, reference {:e} — {}",
            self.values,
            self.worst,
            self.bound,
            self.row,
            self.got,
            self.want,
            if self.passed() { "PASS" } else { "FAIL" }
        )
    }
}

/// Gradients of one chunk into `values` (f32: the evaluator; f64: the CPU);
/// with `--verify` (f32), the chunk's worst value against the CPU f64 gradients.
fn evaluate_gradients(
    rows: &Rows,
    values: &mut Values,
    options: EvalOptions,
    evaluator: Option<&Evaluator>,
    args: &EvalArgs,
) -> Result<Option<GradReport>, CliError> {
    let k = gradient::values_per_pair(options.metrics);
    match (rows, values) {
        (Rows::F32(pairs), Values::F32(flat)) => {
            flat.resize(pairs.len() * k, 0.0);
            let on_gpu = match evaluator {
                Some(ev) => {
                    ev.gradients_with(pairs, options, flat)?;
                    ev.uses_gpu_for(pairs.len())
                }
                None => {
                    gradient::cpu_gradients_with(pairs, options, flat)?;
                    false
                }
            };
            if !args.verify {
                return Ok(None);
            }
            let p64: Vec<_> = pairs.iter().map(|p| p.to_f64()).collect();
            let mut reference = vec![0f64; flat.len()];
            gradient::cpu_gradients_f64_with(&p64, options, &mut reference)?;
            // Scales of the computed columns (all eight, then the selected ones).
            let both = options.metrics.len() == 2;
            let kl_only = options.metrics.contains(Metric::Kl) && !both;
            let mut report = GradReport {
                values: flat.len() as u64,
                worst: 0.0,
                row: 0,
                got: 0.0,
                want: 0.0,
                bound: if on_gpu { 2e-6 } else { 1e-6 },
            };
            for (i, p) in p64.iter().enumerate() {
                let scales = gradient_scales(p, options.param);
                let sel = match (both, kl_only) {
                    (true, _) => &scales[..],
                    (false, true) => &scales[gradient::PER_MEASURE..],
                    _ => &scales[..gradient::PER_MEASURE],
                };
                let row = i * k..(i + 1) * k;
                let (Some(got), Some(want)) = (flat.get(row.clone()), reference.get(row)) else {
                    continue;
                };
                for ((g, w), s) in got.iter().zip(want).zip(sel) {
                    let e = gradient_error(f64::from(*g), *w, *s, gaussdiv::Precision::F32);
                    if e > report.worst || e.is_nan() {
                        report.worst = e;
                        report.row = i;
                        report.got = f64::from(*g);
                        report.want = *w;
                    }
                }
            }
            Ok(Some(report))
        }
        (Rows::F64(pairs), Values::F64(flat)) => {
            flat.resize(pairs.len() * k, 0.0);
            gradient::cpu_gradients_f64_with(pairs, options, flat)?;
            Ok(None)
        }
        _ => Err(CliError::input(
            "internal: precision mismatch between input and output buffers",
        )),
    }
}

/// Read until `max` rows or the end of the input (a source may return fewer
/// rows than asked before its end).
fn read_full(source: &mut dyn io::Source, max: usize, rows: &mut Rows) -> Result<usize, CliError> {
    let mut n = source.read(max, rows)?;
    if n == 0 || n == max {
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
    }
    Ok(n)
}

/// `--dims D`: one output row per D input rows (see `layout::diagonal_with`).
fn evaluate_diagonal(
    rows: &Rows,
    values: &mut Values,
    dims: usize,
    options: EvalOptions,
    evaluator: Option<&Evaluator>,
) -> Result<(), CliError> {
    let k = options.metrics.len();
    match (rows, values) {
        (Rows::F32(pairs), Values::F32(flat)) => {
            flat.resize(pairs.len() / dims * k, 0.0);
            match evaluator {
                Some(ev) => gaussdiv::layout::diagonal_with(ev, pairs, dims, options, flat)?,
                None => cpu::diagonal_with(pairs, dims, options, flat)?,
            }
        }
        (Rows::F64(pairs), Values::F64(flat)) => {
            flat.resize(pairs.len() / dims * k, 0.0);
            cpu::diagonal_f64_with(pairs, dims, options, flat)?;
        }
        _ => {
            return Err(CliError::input(
                "internal: precision mismatch between input and output buffers",
            ))
        }
    }
    Ok(())
}
