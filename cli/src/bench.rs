//! `gaussdiv bench`: end-to-end and kernel-only throughput per backend, on a
//! random batch held in memory; medians of several runs after a warm-up.
//! `--layout`, `--on-invalid` and `--output` make the end-to-end runs match
//! a caller's conditions (e.g. the Python binding's: four columns, the error
//! policy, a new output per call).

use super::eval::parse_metrics;
use super::{CliError, ParamArg};
use gaussdiv::wgpu;
use gaussdiv::{
    Backend, Batch, DeviceBatch, DeviceInput, Evaluator, GaussianPair, OnInvalid, Param, Request,
    Tolerance,
};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Pairs per batch.
    #[arg(long, default_value_t = 10_000_000)]
    pub pairs: usize,
    /// Comma-separated backends to measure: cpu, gpu, auto.
    #[arg(long, default_value = "cpu,gpu")]
    pub backend: String,
    /// Measures to compute.
    #[arg(long, default_value = "cross_entropy,kl")]
    pub metrics: String,
    /// Parameterisation of the generated inputs (as `eval --param`).
    #[arg(long, value_enum, default_value = "std")]
    pub param: ParamArg,
    /// Timed runs per backend (after one warm-up run); the median is reported.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Input layout of the end-to-end runs: an array of pairs, or four
    /// columns μ1, a1, μ2, a2 (`Batch::Columns`, as the Python binding
    /// passes NumPy arrays). The GPU kernel-only rate always reads pairs.
    #[arg(long, value_enum, default_value = "pairs")]
    pub layout: LayoutArg,
    /// Invalid-input policy of the runs (`error` adds the check that names
    /// an invalid pair; the batch has none).
    #[arg(long, value_enum, default_value = "nan")]
    pub on_invalid: OnInvalidArg,
    /// Output of the end-to-end runs: one buffer written by every run, or a
    /// new zeroed one allocated inside each timed run (freed after it), as a
    /// caller that returns a fresh array pays for its first touch.
    #[arg(long, value_enum, default_value = "reused")]
    pub output: OutputArg,
    /// Full-covariance pairs of dimension D instead of univariate ones
    /// (both sides covariance matrices, f32). The GPU row adds the
    /// kernel-only rate of the device path (pairs already on the device;
    /// the close pairs the kernel leaves are not finished there). --param,
    /// --layout and --output do not apply.
    #[arg(long, value_name = "D", value_parser = clap::value_parser!(u32).range(1..))]
    pub mvn: Option<u32>,
}

/// `bench --layout`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutArg {
    /// `Batch::Pairs`: 16-byte pairs, interleaved.
    Pairs,
    /// `Batch::Columns`: four f32 arrays.
    Columns,
}

/// `bench --on-invalid`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnInvalidArg {
    /// Invalid pairs are an error (found by a scan of the output).
    Error,
    /// Invalid pairs give NaN.
    Nan,
}

/// `bench --output`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputArg {
    /// One output buffer, written by every run.
    Reused,
    /// A new zeroed buffer per run, allocated inside the timing.
    Fresh,
}

/// The batch in the layout asked for.
struct Input {
    pairs: Vec<GaussianPair>,
    /// μ1, a1, μ2, a2 of `pairs` (with `--layout columns`).
    columns: Option<[Vec<f32>; 4]>,
    fresh: bool,
}

impl Input {
    fn batch(&self) -> Batch<'_, f32> {
        match &self.columns {
            Some([a, b, c, d]) => Batch::Columns([a, b, c, d]),
            None => Batch::Pairs(&self.pairs),
        }
    }

    /// One timed end-to-end run into `out`, or with `--output fresh` into a
    /// new buffer of its length (allocated inside the timing, freed after
    /// it, as a caller frees a returned array later).
    fn run_once(
        &self,
        ev: &Evaluator,
        request: &Request,
        out: &mut [f32],
    ) -> Result<Duration, CliError> {
        let t = Instant::now();
        if self.fresh {
            let mut o = vec![0f32; out.len()];
            ev.evaluate(self.batch(), request, &mut o)?;
            let d = t.elapsed();
            drop(o);
            return Ok(d);
        }
        ev.evaluate(self.batch(), request, out)?;
        Ok(t.elapsed())
    }
}

pub(crate) struct Row {
    pub(crate) backend: &'static str,
    /// For auto: which backend it chose for this batch, and its crossover.
    pub(crate) chose: Option<(&'static str, usize)>,
    pub(crate) device: String,
    pub(crate) pairs: usize,
    pub(crate) median: Duration,
    pub(crate) kernel_median: Option<Duration>,
    pub(crate) worst_error: f64,
    pub(crate) runs: usize,
}

/// A reproducible batch mixing ordinary and adversarial pairs, in the
/// parameterisation `param` (the same Gaussians whatever it is).
pub fn batch(n: usize, param: Param) -> Vec<GaussianPair> {
    let a = |s: f32| -> f32 {
        let s = f64::from(s);
        (match param {
            Param::Var => s * s,
            Param::LogStd => s.ln(),
            Param::LogVar => 2.0 * s.ln(),
            Param::Precision => 1.0 / (s * s),
            _ => s,
        }) as f32
    };
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|i| {
            let mu1 = (next() * 20.0 - 10.0) as f32;
            let s1 = 10f64.powf(next() * 4.0 - 2.0) as f32;
            let mu2 = (next() * 20.0 - 10.0) as f32;
            let s2 = 10f64.powf(next() * 4.0 - 2.0) as f32;
            if i % 16 == 0 {
                GaussianPair::new(mu1, a(s1), mu1, a(s1 * 1.000_001))
            } else {
                GaussianPair::new(mu1, a(s1), mu2, a(s2))
            }
        })
        .collect()
}

pub(crate) fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn worst(
    pairs: &[GaussianPair],
    request: &Request,
    out: &[f32],
    tol: Tolerance,
) -> Result<f64, CliError> {
    let r = gaussdiv::verify(Batch::Pairs(pairs), request, out, tol)?;
    Ok(r.metrics
        .iter()
        .filter_map(|m| m.worst.map(|w| w.error))
        .fold(0.0, f64::max))
}

/// End-to-end runs of one evaluator: the first as a warm-up (into `out`,
/// which is verified), then `runs` timed.
fn timed(
    ev: &Evaluator,
    input: &Input,
    request: &Request,
    out: &mut [f32],
    runs: usize,
) -> Result<Vec<Duration>, CliError> {
    ev.evaluate(input.batch(), request, out)?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        times.push(input.run_once(ev, request, out)?);
    }
    Ok(times)
}

fn bench_cpu(input: &Input, request: &Request, runs: usize) -> Result<Row, CliError> {
    let pairs = &input.pairs;
    let ev = Evaluator::new(Backend::Cpu)?;
    let mut out = vec![0f32; pairs.len() * request.values_per_pair()];
    let times = timed(&ev, input, request, &mut out, runs)?;
    Ok(Row {
        backend: "cpu",
        chose: None,
        device: format!("{} threads", rayon::current_num_threads()),
        pairs: pairs.len(),
        median: median(times),
        kernel_median: None,
        worst_error: worst(pairs, request, &out, Tolerance::CPU_F32)?,
        runs,
    })
}

fn bench_gpu(input: &Input, request: &Request, runs: usize) -> Result<Row, CliError> {
    let pairs = &input.pairs;
    let gpu = Evaluator::new(Backend::Gpu).map_err(|e| CliError {
        code: 3,
        message: format!("bench --backend gpu: {e}"),
    })?;
    let (device, queue) = gpu
        .device()
        .ok_or_else(|| CliError::input("internal: a GPU evaluator without a device"))?;
    let k = request.values_per_pair();
    let mut out = vec![0f32; pairs.len() * k];
    gpu.evaluate(input.batch(), request, &mut out)?;
    let worst_error = worst(pairs, request, &out, Tolerance::GPU_F32)?;

    // Kernel only: the data already on the device; submit to completion.
    // (Skipped when the batch does not fit one device buffer: the end-to-end
    // path chunks, this measurement does not.)
    let fits = |bytes: u64| bytes <= device.limits().max_buffer_size;
    let kernel_buffers =
        (!pairs.is_empty() && fits(pairs.len() as u64 * 16) && fits((pairs.len() * k * 4) as u64))
            .then(|| {
                let inputs = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("bench input"),
                    size: pairs.len() as u64 * 16,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                queue.write_buffer(&inputs, 0, bytemuck::cast_slice(pairs));
                let output = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("bench output"),
                    size: (pairs.len() * k * 4) as u64,
                    usage: wgpu::BufferUsages::STORAGE,
                    mapped_at_creation: false,
                });
                (inputs, output)
            });
    let kernel_once =
        |(inputs, output): &(wgpu::Buffer, wgpu::Buffer)| -> Result<Duration, CliError> {
            let t = Instant::now();
            let mut enc = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("bench kernel"),
            });
            let batch = DeviceBatch {
                input: DeviceInput::Pairs {
                    pairs: inputs.slice(..),
                    count: pairs.len() as u64,
                },
                output: output.slice(..),
            };
            gpu.encode(&mut enc, batch, request)?;
            let idx = queue.submit([enc.finish()]);
            device
                .poll(wgpu::PollType::Wait {
                    submission_index: Some(idx),
                    timeout: None,
                })
                .map_err(|e| CliError::input(format!("GPU wait failed: {e}")))?;
            Ok(t.elapsed())
        };
    if let Some(b) = &kernel_buffers {
        kernel_once(b)?; // warm-up
    }
    // Interleaved: end-to-end and kernel-only alternate, so that both see the
    // same machine load and their ratio means something on a noisy machine.
    let mut times = Vec::with_capacity(runs);
    let mut kernel = Vec::with_capacity(runs);
    for _ in 0..runs {
        times.push(input.run_once(&gpu, request, &mut out)?);
        if let Some(b) = &kernel_buffers {
            kernel.push(kernel_once(b)?);
        }
    }
    let kernel_median = kernel_buffers.as_ref().map(|_| median(kernel));
    Ok(Row {
        backend: "gpu",
        chose: None,
        device: gpu
            .gpu_info()
            .and_then(|i| i.adapter)
            .map(|a| format!("{} ({:?})", a.info.name, a.info.backend))
            .unwrap_or_default(),
        pairs: pairs.len(),
        median: median(times),
        kernel_median,
        worst_error,
        runs,
    })
}

fn bench_auto(input: &Input, request: &Request, runs: usize) -> Result<Row, CliError> {
    let pairs = &input.pairs;
    let ev = Evaluator::new(Backend::Auto)?;
    let mut out = vec![0f32; pairs.len() * request.values_per_pair()];
    let times = timed(&ev, input, request, &mut out, runs)?;
    let on_gpu = ev.uses_gpu_for(pairs.len());
    let tol = if on_gpu {
        Tolerance::GPU_F32
    } else {
        Tolerance::CPU_F32
    };
    let crossover = ev.crossover().map_or(usize::MAX, |c| c.gpu_min_pairs);
    Ok(Row {
        backend: "auto",
        chose: Some((if on_gpu { "gpu" } else { "cpu" }, crossover)),
        device: match ev.crossover() {
            Some(c) if c.measured => format!(
                "measured: cpu {:.1} us + {:.0} Mp/s, gpu {:.1} us + {:.0} Mp/s",
                c.cpu_latency_s * 1e6,
                c.cpu_pairs_per_s / 1e6,
                c.gpu_latency_s * 1e6,
                c.gpu_pairs_per_s / 1e6
            ),
            Some(_) => "crossover set by hand".into(),
            None => ev.fallback_reason().unwrap_or("no GPU").to_string(),
        },
        pairs: pairs.len(),
        median: median(times),
        kernel_median: None,
        worst_error: worst(pairs, request, &out, tol)?,
        runs,
    })
}

/// The command-line spelling of an option's value.
fn value_name<E: clap::ValueEnum>(e: E) -> String {
    e.to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

fn rate(pairs: usize, d: Duration) -> f64 {
    pairs as f64 / d.as_secs_f64().max(1e-12) / 1e6
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

pub fn run(args: &BenchArgs) -> Result<u8, CliError> {
    let (_, metrics, _) = parse_metrics(&args.metrics)?;
    let param: Param = args.param.into();
    let request = Request::measures(metrics)
        .with_param(param)
        .with_on_invalid(match args.on_invalid {
            OnInvalidArg::Error => OnInvalid::Error,
            OnInvalidArg::Nan => OnInvalid::Nan,
        });
    let runs = args.runs.max(1);
    let mut backends = Vec::new();
    for b in args
        .backend
        .split(',')
        .map(str::trim)
        .filter(|b| !b.is_empty())
    {
        match b {
            "cpu" | "gpu" | "auto" => backends.push(b),
            other => {
                return Err(CliError::input(format!(
                    "unknown backend {other:?} in --backend (valid: cpu, gpu, auto)"
                )))
            }
        }
    }
    if backends.is_empty() {
        return Err(CliError::input("--backend names no backend"));
    }
    if let Some(d) = args.mvn {
        let rows = super::bench_mvn::rows(args.pairs, d as usize, &request, runs, &backends)?;
        let conditions = [
            format!("mvn d={d}"),
            value_name(args.on_invalid),
            "reused".to_string(),
        ];
        print_rows(&rows, args.json, &conditions, runs);
        return Ok(0);
    }
    let pairs = batch(args.pairs, param);
    let columns = (args.layout == LayoutArg::Columns).then(|| {
        let col = |f: fn(&GaussianPair) -> f32| pairs.iter().map(f).collect::<Vec<f32>>();
        [
            col(|p| p.mu1),
            col(|p| p.sigma1),
            col(|p| p.mu2),
            col(|p| p.sigma2),
        ]
    });
    let input = Input {
        pairs,
        columns,
        fresh: args.output == OutputArg::Fresh,
    };
    let mut rows = Vec::new();
    for b in backends {
        rows.push(match b {
            "gpu" => bench_gpu(&input, &request, runs)?,
            "auto" => bench_auto(&input, &request, runs)?,
            _ => bench_cpu(&input, &request, runs)?,
        });
    }
    let conditions = [
        value_name(args.layout),
        value_name(args.on_invalid),
        value_name(args.output),
    ];
    print_rows(&rows, args.json, &conditions, runs);
    Ok(0)
}

/// The table or the JSON array of `rows`, with the run conditions
/// (layout, invalid-input policy, output).
fn print_rows(rows: &[Row], json: bool, conditions: &[String; 3], runs: usize) {
    let [layout, policy, output] = conditions;
    if json {
        let items: Vec<String> = rows
            .iter()
            .map(|r| {
                let mut o = format!(
                    "{{\"backend\": {}, \"device\": {}, \"pairs\": {}, \"layout\": {}, \"on_invalid\": {}, \"output\": {}, \"runs\": {}, \"median_s\": {:e}, \"mpairs_per_s\": {:.3}",
                    json_str(r.backend),
                    json_str(&r.device),
                    r.pairs,
                    json_str(layout),
                    json_str(policy),
                    json_str(output),
                    r.runs,
                    r.median.as_secs_f64(),
                    rate(r.pairs, r.median)
                );
                if let Some(k) = r.kernel_median {
                    o.push_str(&format!(
                        ", \"kernel_median_s\": {:e}, \"kernel_mpairs_per_s\": {:.3}",
                        k.as_secs_f64(),
                        rate(r.pairs, k)
                    ));
                }
                if let Some((chose, crossover)) = r.chose {
                    let c = if crossover == usize::MAX { "null".to_string() } else { crossover.to_string() };
                    o.push_str(&format!(", \"chose\": {}, \"crossover_pairs\": {c}", json_str(chose)));
                }
                let w = if r.worst_error.is_finite() { format!("{:e}", r.worst_error) } else { "null".into() };
                o.push_str(&format!(", \"worst_error\": {w}}}"));
                o
            })
            .collect();
        println!("[{}]", items.join(",\n "));
    } else {
        println!(
            "{:<8} {:>11} {:>16} {:>18} {:>12}  device",
            "", "pairs", "end-to-end Mp/s", "kernel-only Mp/s", "worst error"
        );
        for r in rows {
            let name = match r.chose {
                Some((c, _)) => format!("{}>{c}", r.backend),
                None => r.backend.to_string(),
            };
            println!(
                "{:<8} {:>11} {:>16.1} {:>18} {:>12.2e}  {}",
                name,
                r.pairs,
                rate(r.pairs, r.median),
                r.kernel_median
                    .map_or("-".to_string(), |k| format!("{:.1}", rate(r.pairs, k))),
                r.worst_error,
                r.device
            );
        }
        println!(
            "(median of {runs} runs after a warm-up; CE+KL of σ unless --metrics / --param say otherwise; \
             {layout} layout, on_invalid {policy}, {output} output)"
        );
    }
}
