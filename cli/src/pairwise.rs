//! `gaussdiv pairwise P Q -o OUT --metric NAME`: the N × M matrix of one
//! measure between every p_i of P and every q_j of Q.

use super::eval::evaluator_for;
use super::io::{create_sink, Values};
use super::npy::{parse_dict_cols, read_header_dict};
use super::{BackendArg, CliError, ParamArg};
use gaussdiv::{Batch, Gaussian, Metric, Metrics, OnInvalid, Param, Request};
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct PairwiseArgs {
    /// The p_i: CSV with a header naming `mu` and `sigma` (or the parameter of
    /// --param: var, logstd, logvar, precision; `a` is accepted too), or NPY of shape (N, 2).
    pub p: PathBuf,
    /// The q_j, in the same form as P.
    pub q: PathBuf,
    /// Output: `.npy` (an (N, M) float32 matrix) or `.csv` (N lines of M values
    /// under a header q0,…); absent: CSV on standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// The measure (one of the `--metrics` names of `eval`).
    #[arg(long, default_value = "kl")]
    pub metric: String,
    /// Where to compute.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendArg,
    /// The parameterisation of the scale column.
    #[arg(long, value_enum, default_value = "std")]
    pub param: ParamArg,
}

fn read_gaussians(path: &Path, param: Param) -> Result<Vec<Gaussian>, CliError> {
    let label = path.display().to_string();
    let mut file = std::fs::File::open(path)
        .map_err(|e| CliError::input(format!("cannot open {label}: {e}")))?;
    let npy = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    if npy {
        let dict = read_header_dict(&mut file, &label)?;
        let h = parse_dict_cols(&dict, &label, 2, "(mu, a)")?;
        let width = if h.f64 { 16 } else { 8 };
        let mut data = Vec::new();
        file.read_to_end(&mut data)
            .map_err(|e| CliError::input(format!("{label}: read error: {e}")))?;
        let want = h
            .rows
            .checked_mul(width)
            .and_then(|b| usize::try_from(b).ok());
        if want != Some(data.len()) {
            return Err(CliError::input(format!(
                "{label}: the header says {} rows ({} bytes), the data has {} bytes",
                h.rows,
                want.map_or("too many".into(), |b| b.to_string()),
                data.len()
            )));
        }
        let value = |b: &[u8]| -> f32 {
            if h.f64 {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                (if h.big_endian {
                    f64::from_be_bytes(a)
                } else {
                    f64::from_le_bytes(a)
                }) as f32
            } else {
                let mut a = [0u8; 4];
                a.copy_from_slice(b);
                if h.big_endian {
                    f32::from_be_bytes(a)
                } else {
                    f32::from_le_bytes(a)
                }
            }
        };
        let half = (width / 2) as usize;
        return Ok(data
            .chunks_exact(width as usize)
            .map(|row| {
                let (m, a) = row.split_at(half);
                Gaussian {
                    mu: value(m),
                    sigma: value(a),
                }
            })
            .collect());
    }
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(std::io::BufReader::new(file));
    let header = reader
        .headers()
        .map_err(|e| CliError::input(format!("{label}: cannot read the header: {e}")))?
        .clone();
    let scale_names = [param.column(1).trim_end_matches('1'), "a", "sigma"];
    let col = |names: &[&str]| header.iter().position(|h| names.contains(&h));
    let (Some(mu_col), Some(a_col)) = (col(&["mu"]), col(&scale_names)) else {
        return Err(CliError::input(format!(
            "{label}: the header must name `mu` and `{}` (found: {})",
            scale_names[0],
            header.iter().collect::<Vec<_>>().join(",")
        )));
    };
    let mut out = Vec::new();
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|e| CliError::input(format!("{label}: malformed CSV: {e}")))?;
        let parse = |c: usize, name: &str| -> Result<f32, CliError> {
            let text = record.get(c).unwrap_or("");
            text.parse::<f32>().map_err(|_| {
                CliError::input(format!(
                    "{label}: data row {}, column {name}: cannot parse {text:?} as a number",
                    row + 1
                ))
            })
        };
        out.push(Gaussian {
            mu: parse(mu_col, "mu")?,
            sigma: parse(a_col, scale_names[0])?,
        });
    }
    Ok(out)
}

pub fn run(args: &PairwiseArgs) -> Result<u8, CliError> {
    let metric: Metric = args
        .metric
        .trim()
        .parse()
        .map_err(|e: gaussdiv::Error| CliError::input(format!("--metric: {e}")))?;
    let metrics = Metrics::new(&[metric]).ok_or_else(|| CliError::input("no metric"))?;
    let param: Param = args.param.into();
    let p = read_gaussians(&args.p, param)?;
    let q = read_gaussians(&args.q, param)?;
    let evaluator = evaluator_for(args.backend)?;
    let names: Vec<String> = (0..q.len()).map(|j| format!("q{j}")).collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut out = vec![0f32; p.len() * q.len()];
    // The tool's evaluator writes NaN for invalid pairs: report them here,
    // naming the file and row, before any work.
    for (which, list) in [("P", &p), ("Q", &q)] {
        for (i, g) in list.iter().enumerate() {
            let pair = gaussdiv::GaussianPair::new(g.mu, g.sigma, g.mu, g.sigma);
            if let Some((_, reason)) = pair.invalid_field(param) {
                return Err(CliError::input(format!(
                    "{}: row {} of {which}: invalid ({reason}): mu = {}, {} = {}",
                    if which == "P" {
                        args.p.display()
                    } else {
                        args.q.display()
                    },
                    i + 1,
                    g.mu,
                    param.column(1).trim_end_matches('1'),
                    g.sigma
                )));
            }
        }
    }
    // Inputs checked above; the request's policy is NaN like the tool's.
    let request = Request::measures(metrics)
        .with_param(param)
        .with_on_invalid(OnInvalid::Nan);
    evaluator.evaluate(Batch::Pairwise { p: &p, q: &q }, &request, &mut out)?;
    let mut sink = create_sink(args.output.as_deref(), &name_refs, false, &[])?;
    let order: Vec<usize> = (0..q.len()).collect();
    if !q.is_empty() {
        sink.write(&Values::F32(out), q.len(), &order, None, false)?;
    }
    sink.finish()?;
    Ok(0)
}
