//! The `gaussdiv` command-line tool over the `gaussdiv` library: argument
//! parsing, subcommands, the CSV/NPY readers and writers, the streaming
//! read ‖ evaluate ‖ write pipeline and the exit codes (docs/ARCHITECTURE.md
//! §5). The binary is `src/main.rs`; this library exists so that the fuzz
//! targets and the reader tests can drive the readers directly.
//!
//! Exit codes: 0 success; 1 `--verify` found a result outside tolerance;
//! 2 bad input, usage or I/O error; 3 no GPU adapter for `--backend gpu`.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

#[cfg(not(target_arch = "wasm32"))]
mod bench;
#[cfg(not(target_arch = "wasm32"))]
mod bench_mvn;
#[doc(hidden)]
pub mod columns;
#[cfg(not(target_arch = "wasm32"))]
mod eval;
// Public (but not a supported API) so that the fuzz targets and
// tests/readers.rs can drive the readers directly.
#[doc(hidden)]
pub mod io;
#[cfg(not(target_arch = "wasm32"))]
mod mvn;
#[doc(hidden)]
pub mod npy;
mod output;
#[cfg(not(target_arch = "wasm32"))]
mod pairwise;
// On wasm32 (the browser build reads CSV/NPY through `io`) nothing installs handlers.
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
mod signals;
#[cfg(feature = "parquet")]
mod table;
#[cfg(feature = "parquet")]
mod table_out;

use clap::ValueEnum;
#[cfg(not(target_arch = "wasm32"))]
use clap::{Parser, Subcommand};
use std::path::PathBuf;
#[cfg(not(target_arch = "wasm32"))]
use std::process::ExitCode;

/// A failure with its exit code and message.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl CliError {
    pub fn input(message: impl Into<String>) -> CliError {
        CliError {
            code: 2,
            message: message.into(),
        }
    }
}

impl From<gaussdiv::Error> for CliError {
    fn from(e: gaussdiv::Error) -> CliError {
        let code = match e {
            gaussdiv::Error::NoAdapter(_) | gaussdiv::Error::RequestDevice { .. } => 3,
            _ => 2,
        };
        CliError {
            code,
            message: e.to_string(),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
#[derive(Parser, Debug)]
#[command(
    name = "gaussdiv",
    version,
    about = "Cross-entropy, KL divergence and other information measures of Gaussian pairs, on the GPU (wgpu) or the CPU, accurate in f32",
    after_help = "Exit codes: 0 success, 1 --verify found a result out of tolerance, \
                  2 bad input / usage / I/O error, 3 no GPU adapter for --backend gpu."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[cfg(not(target_arch = "wasm32"))]
#[derive(Subcommand, Debug)]
enum Command {
    /// Evaluate every row of a CSV or NPY file of pairs (mu1, sigma1, mu2, sigma2, or the --param form).
    Eval(EvalArgs),
    /// Measure throughput on a random batch held in memory, per backend.
    Bench(bench::BenchArgs),
    /// The N × M matrix of one measure between every p of P and every q of Q.
    Pairwise(pairwise::PairwiseArgs),
    /// List the GPU adapters, which one is chosen and why, and its features and limits.
    Info,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendArg {
    /// The GPU when present and worthwhile, else the CPU (said on stderr).
    Auto,
    /// The GPU only (exit 3 without one).
    Gpu,
    /// The CPU only.
    Cpu,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrecisionArg {
    /// 32-bit floats (GPU or CPU).
    F32,
    /// 64-bit floats: the CPU reference path, or the GPU f64 kernel with
    /// `--backend gpu` (adapters with SHADER_F64 and SHADER_INT64; `auto` uses the CPU).
    F64,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamArg {
    /// Standard deviations σ (columns sigma1, sigma2).
    Std,
    /// Variances σ² (columns var1, var2).
    Var,
    /// ln σ (columns logstd1, logstd2).
    Logstd,
    /// ln σ² (columns logvar1, logvar2).
    Logvar,
    /// Precisions 1/σ² (columns precision1, precision2).
    Precision,
}

impl From<ParamArg> for gaussdiv::Param {
    fn from(p: ParamArg) -> gaussdiv::Param {
        match p {
            ParamArg::Std => gaussdiv::Param::Std,
            ParamArg::Var => gaussdiv::Param::Var,
            ParamArg::Logstd => gaussdiv::Param::LogStd,
            ParamArg::Logvar => gaussdiv::Param::LogVar,
            ParamArg::Precision => gaussdiv::Param::Precision,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnInvalidArg {
    /// Stop with an error naming the row, column and value.
    Error,
    /// Write NaN for invalid rows and evaluate the rest.
    Nan,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressArg {
    /// When standard error is a terminal.
    Auto,
    /// Always, on standard error.
    Always,
    /// Never.
    Never,
}

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// Input: .csv with a header naming mu1, sigma1 (or s1), mu2, sigma2 (or s2) in any order
    /// (with --param: var1/var2, logstd1/logstd2, logvar1/logvar2 or precision1/precision2;
    /// a1/a2 in any parameterisation; other names with --columns), .parquet/.pq or Arrow IPC
    /// (.arrow, .feather, .ipc: the IPC file format) with float32/float64 columns of those names, or .npy of
    /// float32/float64 with shape (N, 4); `-` or absent: CSV on standard input. Full-covariance
    /// pairs: .npz holding mu1, mu2 (N, d) and one of cov1|scale_tril1|precision1 and one of
    /// cov2|scale_tril2|precision2 (N, d, d), float32/float64, C order.
    pub input: Option<PathBuf>,
    /// Output by extension (.csv, .parquet/.pq (zstd), .arrow/.feather/.ipc (Arrow IPC file), or
    /// .npy of shape (N, k)); absent: CSV on standard output. Written to a temporary file and
    /// renamed on success.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// The input's own names for the four columns, e.g.
    /// mu1=loc_p,sigma1=scale_p,mu2=loc_q,sigma2=scale_q (the scale fields by --param:
    /// sigma1/s1, var1, logstd1, logvar1, precision1, or a1; likewise …2). CSV, Parquet, Arrow.
    #[arg(long, value_name = "FIELD=NAME,...")]
    pub columns: Option<String>,
    /// Copy these input columns (ids, keys) into the output, before the measures, in row
    /// order. CSV, Parquet or Arrow output.
    #[arg(long, value_name = "COL,...")]
    pub keep: Option<String>,
    /// Copy every input column other than the four inputs into the output (as --keep).
    #[arg(long)]
    pub keep_all: bool,
    /// Where to compute.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendArg,
    /// Comma-separated measures to write, as columns in this order: cross_entropy, kl,
    /// entropy (of p1), entropy_q (of p2), reverse_kl, jeffreys, bhattacharyya,
    /// bhattacharyya_coefficient, hellinger, wasserstein2.
    #[arg(long, default_value = "cross_entropy,kl")]
    pub metrics: String,
    /// How the second and fourth columns give the standard deviations: sigma, sigma^2,
    /// ln sigma, ln sigma^2 or 1/sigma^2 (converted inside the kernel, from the input directly).
    #[arg(long, value_enum, default_value = "std")]
    pub param: ParamArg,
    /// Arithmetic and output precision.
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: PrecisionArg,
    /// What to do with a row that is not a valid pair of Gaussians.
    #[arg(long, value_enum, default_value = "error")]
    pub on_invalid: OnInvalidArg,
    /// Check every result against the CPU f64 reference (full-covariance NPZ pairs too, under
    /// their own bounds); exit 1 and print the worst row if any is out of tolerance.
    #[arg(long)]
    pub verify: bool,
    /// Write the gradients of the --metrics (cross_entropy and/or kl) with respect to the
    /// inputs instead of their values: four columns per measure, d<ce|kl>_dmu1, _da1,
    /// _dmu2, _da2 (a = the --param column).
    #[arg(long)]
    pub gradients: bool,
    /// Diagonal multivariate Gaussians: every D consecutive input rows are the D independent
    /// dimensions of one pair N(mu1, diag a1) vs N(mu2, diag a2); one output row each (sums over
    /// the dims; bhattacharyya_coefficient, hellinger and wasserstein2 of the joint distributions).
    #[arg(long, value_name = "D", value_parser = clap::value_parser!(u32).range(1..))]
    pub dims: Option<u32>,
    /// Progress bar on standard error (rows/s, ETA).
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressArg,
}

#[cfg(not(target_arch = "wasm32"))]
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    signals::install();
    let result = match cli.command {
        Command::Eval(args) => eval::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Pairwise(args) => pairwise::run(&args),
        Command::Info => info(),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("gaussdiv: error: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn info() -> Result<u8, CliError> {
    let adapters = pollster::block_on(gaussdiv::adapters());
    println!("adapters found: {}", adapters.available.len());
    for (i, s) in adapters.available.iter().enumerate() {
        println!("  [{i}] {s}");
    }
    match adapters.chosen {
        Ok((s, reason)) => {
            println!("chosen: {} — {reason}", s.info.name);
            use gaussdiv::wgpu::Features as F;
            for (name, f) in [
                ("SHADER_F64", F::SHADER_F64),
                ("SHADER_INT64", F::SHADER_INT64),
                ("MAPPABLE_PRIMARY_BUFFERS", F::MAPPABLE_PRIMARY_BUFFERS),
                ("TIMESTAMP_QUERY", F::TIMESTAMP_QUERY),
            ] {
                println!(
                    "  feature {name:<26} {}",
                    if s.features.contains(f) { "yes" } else { "no" }
                );
            }
            let l = &s.limits;
            println!(
                "  limit max_storage_buffer_binding_size   {}",
                l.max_storage_buffer_binding_size
            );
            println!(
                "  limit max_buffer_size                   {}",
                l.max_buffer_size
            );
            println!(
                "  limit max_compute_workgroups_per_dimension {}",
                l.max_compute_workgroups_per_dimension
            );
            println!(
                "  limit max_compute_invocations_per_workgroup {}",
                l.max_compute_invocations_per_workgroup
            );
            println!(
                "  limit min_storage_buffer_offset_alignment {}",
                l.min_storage_buffer_offset_alignment
            );
            Ok(0)
        }
        Err(e) => {
            println!("chosen: none — {e}");
            Ok(0)
        }
    }
}
