//! Streaming input (CSV, NPY; Parquet and Arrow IPC in `table`); the
//! output side lives in `output` (and `table_out`), re-exported here.

use super::columns::{ColumnMap, KeepSpec, Kept, KeptColumn, TextColumn};
use super::npy;
pub use super::output::{create_sink, CsvSink, NpySink, Shortest, Sink, Values};
use super::CliError;
use gaussdiv::{Field, GaussianPair, GaussianPair64, Param};
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// The column name of a field in parameterisation `param`: `mu1`, `mu2`,
/// and `sigma1`, `var1`, `logstd1`, `logvar1` or `precision1` (and `…2`).
pub fn column_name(field: Field, param: Param) -> &'static str {
    match field {
        Field::Mu1 => "mu1",
        Field::Sigma1 => param.column(1),
        Field::Mu2 => "mu2",
        Field::Sigma2 => param.column(2),
    }
}

/// Accepted CSV header names per field in parameterisation `param` (first
/// is canonical): the scale columns also as `s1`/`s2` (σ only) and `a1`/`a2`
/// (any parameterisation, as in the golden files).
pub fn header_names(param: Param) -> [(Field, Vec<&'static str>); 4] {
    let scale = |field: Field, side: u8| {
        let mut v = vec![column_name(field, param)];
        if param == Param::Std {
            v.push(if side == 1 { "s1" } else { "s2" });
        }
        v.push(if side == 1 { "a1" } else { "a2" });
        (field, v)
    };
    [
        (Field::Mu1, vec!["mu1"]),
        scale(Field::Sigma1, 1),
        (Field::Mu2, vec!["mu2"]),
        scale(Field::Sigma2, 2),
    ]
}

/// A file format, from a path's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated text with a header.
    Csv,
    /// A NumPy array of shape (N, 4) (or (N, k) out).
    Npy,
    /// Apache Parquet (`.parquet`, `.pq`).
    Parquet,
    /// Arrow IPC file format, Feather version 2 (`.arrow`, `.feather`, `.ipc`).
    Arrow,
}

impl Format {
    /// `.npy` is NPY, `.parquet`/`.pq` Parquet, `.arrow`/`.feather`/`.ipc` Arrow
    /// IPC; anything else (and standard input/output) is CSV.
    pub fn of(path: Option<&Path>) -> Format {
        let ext = path.and_then(|p| p.extension()).and_then(|e| e.to_str());
        let is =
            |names: &[&str]| ext.is_some_and(|e| names.iter().any(|n| e.eq_ignore_ascii_case(n)));
        if is(&["npy"]) {
            Format::Npy
        } else if is(&["parquet", "pq"]) {
            Format::Parquet
        } else if is(&["arrow", "feather", "ipc"]) {
            Format::Arrow
        } else {
            Format::Csv
        }
    }

    /// Whether rows have named columns (CSV, Parquet, Arrow), which
    /// `--columns` and `--keep` need.
    pub fn has_names(self) -> bool {
        self != Format::Npy
    }

    /// Parquet or Arrow: available with the `parquet` feature.
    pub fn is_table(self) -> bool {
        matches!(self, Format::Parquet | Format::Arrow)
    }
}

/// Rows per chunk of the pipeline (and per record batch read from Parquet
/// and Arrow files): memory stays bounded whatever the file size.
pub const CHUNK_ROWS: usize = 1 << 20;

/// How a reader interprets its input.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// Fail on the first invalid row (`--on-invalid error`) rather than pass it on.
    pub reject_invalid: bool,
    /// The scale columns' parameterisation.
    pub param: Param,
    /// The table's own names for the four inputs (`--columns`).
    pub columns: ColumnMap,
    /// Other columns to carry to the output (`--keep`, `--keep-all`).
    pub keep: KeepSpec,
}

impl ReadOptions {
    /// Default column names, nothing kept.
    pub fn new(reject_invalid: bool, param: Param) -> ReadOptions {
        ReadOptions {
            reject_invalid,
            param,
            columns: ColumnMap::default(),
            keep: KeepSpec::None,
        }
    }
}

/// One chunk of input rows in the precision asked for.
pub enum Rows {
    F32(Vec<GaussianPair>),
    F64(Vec<GaussianPair64>),
}

impl Rows {
    /// Rows held.
    pub fn len(&self) -> usize {
        match self {
            Rows::F32(v) => v.len(),
            Rows::F64(v) => v.len(),
        }
    }

    /// Whether no row is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where rows come from.
pub trait Source: Send {
    /// Read up to `max` rows into `out` (cleared first); 0 at the end.
    /// A source with kept columns returns `max` rows, or fewer only at the
    /// end of its input or of a group (so that chunks are never joined).
    fn read(&mut self, max: usize, out: &mut Rows) -> Result<usize, CliError>;

    /// The kept columns (`--keep`) of the rows of the last [`Source::read`].
    fn take_kept(&mut self) -> Option<Kept> {
        None
    }

    /// Whether the last read ended a group of rows (a Parquet row group
    /// or an Arrow record batch): the chunk ends there.
    fn group_end(&self) -> bool {
        false
    }

    /// The columns this source keeps, in output order.
    fn kept_columns(&self) -> Vec<KeptColumn> {
        Vec::new()
    }
}

/// Bytes of input consumed so far, shared with the progress display.
pub type ByteCounter = std::sync::Arc<std::sync::atomic::AtomicU64>;

fn is_stdin(path: Option<&Path>) -> bool {
    path.is_none_or(|p| p.as_os_str() == "-")
}

/// Counts bytes read, for progress.
struct Counted<R> {
    inner: R,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// An input stream with its label for messages, its size if known, and its byte counter.
struct Opened {
    reader: Box<dyn Read + Send>,
    label: String,
    size: Option<u64>,
    count: ByteCounter,
}

/// Open the input: `None` or `-` is standard input.
fn open_input(path: Option<&Path>) -> Result<Opened, CliError> {
    let count = ByteCounter::default();
    if is_stdin(path) {
        let reader = Box::new(Counted {
            inner: io::BufReader::with_capacity(1 << 20, io::stdin()),
            count: count.clone(),
        });
        return Ok(Opened {
            reader,
            label: "<stdin>".into(),
            size: None,
            count,
        });
    }
    let p = path.unwrap_or(Path::new("-"));
    let f =
        File::open(p).map_err(|e| CliError::input(format!("cannot open {}: {e}", p.display())))?;
    let size = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
    let reader = Box::new(Counted {
        inner: io::BufReader::with_capacity(1 << 20, f),
        count: count.clone(),
    });
    Ok(Opened {
        reader,
        label: p.display().to_string(),
        size,
        count,
    })
}

/// An opened input: the row source, its byte counter and its size if known.
pub struct Input {
    pub source: Box<dyn Source>,
    pub bytes_read: ByteCounter,
    pub size: Option<u64>,
}

/// Open `path` (`None` or `-`: standard input) in the format of its extension;
/// rows are `(μ1, a1, μ2, a2)` in parameterisation `options.param`.
pub fn open_source(path: Option<&Path>, options: &ReadOptions) -> Result<Input, CliError> {
    let format = Format::of(path);
    if !format.has_names() && (!options.columns.is_empty() || options.keep.is_some()) {
        return Err(CliError::input(
            "--columns, --keep and --keep-all need named columns: CSV, Parquet or Arrow input",
        ));
    }
    if format.is_table() && !is_stdin(path) {
        return open_table(path.unwrap_or(Path::new("-")), format, options);
    }
    let Opened {
        reader,
        label,
        size,
        count,
    } = open_input(path)?;
    let source = source_with_options(reader, label, format, options)?;
    Ok(Input {
        source,
        bytes_read: count,
        size,
    })
}

#[cfg(feature = "parquet")]
fn open_table(path: &Path, format: Format, options: &ReadOptions) -> Result<Input, CliError> {
    super::table::open_file(path, format, options)
}

#[cfg(not(feature = "parquet"))]
fn open_table(_: &Path, _: Format, _: &ReadOptions) -> Result<Input, CliError> {
    Err(no_tables())
}

/// The error for Parquet or Arrow in a build without them.
#[cfg(not(feature = "parquet"))]
pub(crate) fn no_tables() -> CliError {
    CliError::input(
        "this gaussdiv was built without the `parquet` feature: no Parquet or Arrow files",
    )
}

/// A row source over any reader (a file, standard input, bytes in memory),
/// with default column names and nothing kept.
pub fn source_from_reader(
    reader: Box<dyn Read + Send>,
    label: String,
    format: Format,
    reject_invalid: bool,
    param: Param,
) -> Result<Box<dyn Source>, CliError> {
    source_with_options(
        reader,
        label,
        format,
        &ReadOptions::new(reject_invalid, param),
    )
}

/// A row source over any reader. Parquet and Arrow IPC files are read into
/// memory first (they need random access); files on disk are streamed by
/// [`open_source`] instead.
pub fn source_with_options(
    reader: Box<dyn Read + Send>,
    label: String,
    format: Format,
    options: &ReadOptions,
) -> Result<Box<dyn Source>, CliError> {
    Ok(match format {
        Format::Csv => Box::new(CsvSource::new(reader, label, options)?),
        Format::Npy => Box::new(npy::NpySource::new(
            reader,
            label,
            options.reject_invalid,
            options.param,
        )?),
        #[cfg(feature = "parquet")]
        Format::Parquet | Format::Arrow => {
            super::table::source_from_bytes(reader, label, format, options)?
        }
        #[cfg(not(feature = "parquet"))]
        Format::Parquet | Format::Arrow => return Err(no_tables()),
    })
}

/// The error for an invalid parameter value (the column named as in `param`).
pub fn invalid_value(
    label: &str,
    place: &str,
    field: Field,
    param: Param,
    text: &str,
    reason: &str,
) -> CliError {
    invalid_in_column(label, place, column_name(field, param), text, reason)
}

/// The error for an invalid parameter value in the column described by `column`.
pub fn invalid_in_column(
    label: &str,
    place: &str,
    column: &str,
    text: &str,
    reason: &str,
) -> CliError {
    CliError::input(format!(
        "{label}: {place}, column {column}: invalid value {text}: {reason} \
         (use --on-invalid nan to write NaN for such rows)"
    ))
}

/// Reads pairs from CSV, chunk by chunk.
pub struct CsvSource {
    reader: csv::Reader<Box<dyn Read + Send>>,
    cols: [usize; 4],
    label: String,
    record: csv::ByteRecord,
    rows: u64,
    reject_invalid: bool,
    param: Param,
    /// How messages name the four columns.
    described: [String; 4],
    /// Kept columns: their indices and names, and the current chunk's text.
    kept_idx: Vec<usize>,
    kept_names: Vec<String>,
    kept: Vec<TextColumn>,
}

impl CsvSource {
    fn new(
        source: Box<dyn Read + Send>,
        label: String,
        options: &ReadOptions,
    ) -> Result<CsvSource, CliError> {
        let (reject_invalid, param) = (options.reject_invalid, options.param);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            .buffer_capacity(1 << 20)
            .from_reader(source);
        let header = reader
            .byte_headers()
            .map_err(|e| CliError::input(format!("{label}: cannot read the header: {e}")))?
            .clone();
        let names: Vec<String> = header
            .iter()
            .map(|h| String::from_utf8_lossy(h).trim().to_string())
            .collect();
        if names.iter().all(|n| n.is_empty()) {
            return Err(CliError::input(format!(
                "{label}: empty input: expected a header naming mu1,{},mu2,{}",
                param.column(1),
                param.column(2)
            )));
        }
        let mut cols = [0usize; 4];
        let mut missing = Vec::new();
        for (col, (field, aliases)) in cols.iter_mut().zip(header_names(param).iter()) {
            match options.columns.find(*field, aliases, &names) {
                Some(c) => *col = c,
                None => missing.push(options.columns.describe(*field, param)),
            }
        }
        if !missing.is_empty() {
            return Err(CliError::input(format!(
                "{label}: the header lacks column(s) {} (found: {})",
                missing.join(", "),
                names.join(",")
            )));
        }
        let kept_idx = options.keep.resolve(&names, &cols, &label)?;
        let kept_names = kept_idx
            .iter()
            .map(|&i| names.get(i).cloned().unwrap_or_default())
            .collect();
        Ok(CsvSource {
            reader,
            cols,
            label,
            record: csv::ByteRecord::new(),
            rows: 0,
            reject_invalid,
            param,
            described: Field::ALL.map(|f| options.columns.describe(f, param)),
            kept: vec![TextColumn::default(); kept_idx.len()],
            kept_idx,
            kept_names,
        })
    }

    /// The name of `field`'s column in messages.
    fn describe(&self, field: Field) -> &str {
        self.described
            .get(field_index(field))
            .map_or("?", String::as_str)
    }

    /// Read up to `max` rows, parsing with `parse`, pushing each row's four values.
    fn chunk<T: Copy + Default>(
        &mut self,
        max: usize,
        parse: impl Fn(&[u8]) -> Option<T>,
        check: impl Fn([T; 4]) -> Option<(Field, &'static str)>,
        mut push: impl FnMut([T; 4]),
    ) -> Result<usize, CliError> {
        let mut n = 0;
        for k in &mut self.kept {
            k.bytes.clear();
            k.ends.clear();
        }
        while n < max {
            let more = self
                .reader
                .read_byte_record(&mut self.record)
                .map_err(|e| CliError::input(format!("{}: malformed CSV: {e}", self.label)))?;
            if !more {
                break;
            }
            self.rows += 1;
            let mut row = [T::default(); 4];
            for (slot, (&col, field)) in row.iter_mut().zip(self.cols.iter().zip(Field::ALL.iter()))
            {
                let raw = self.record.get(col).unwrap_or(b"");
                match parse(raw) {
                    Some(v) => *slot = v,
                    None => {
                        let line = self.record.position().map_or(0, |p| p.line());
                        return Err(CliError::input(format!(
                            "{}: line {line} (data row {}), column {}: cannot parse {:?} as a number",
                            self.label,
                            self.rows,
                            self.describe(*field),
                            String::from_utf8_lossy(raw)
                        )));
                    }
                }
            }
            if self.reject_invalid {
                if let Some((field, reason)) = check(row) {
                    let col = self.cols.get(field_index(field)).copied().unwrap_or(0);
                    let raw = self.record.get(col).unwrap_or(b"");
                    let line = self.record.position().map_or(0, |p| p.line());
                    return Err(invalid_in_column(
                        &self.label,
                        &format!("line {line} (data row {})", self.rows),
                        self.describe(field),
                        &format!("{:?}", String::from_utf8_lossy(raw)),
                        reason,
                    ));
                }
            }
            for (&c, k) in self.kept_idx.iter().zip(self.kept.iter_mut()) {
                k.push(self.record.get(c).unwrap_or(b""));
            }
            push(row);
            n += 1;
        }
        Ok(n)
    }
}

impl Source for CsvSource {
    fn take_kept(&mut self) -> Option<Kept> {
        if self.kept_idx.is_empty() {
            return None;
        }
        let fresh = vec![TextColumn::default(); self.kept.len()];
        Some(Kept::Text(std::mem::replace(&mut self.kept, fresh)))
    }

    fn kept_columns(&self) -> Vec<KeptColumn> {
        self.kept_names
            .iter()
            .cloned()
            .map(KeptColumn::text)
            .collect()
    }

    fn read(&mut self, max: usize, out: &mut Rows) -> Result<usize, CliError> {
        let param = self.param;
        match out {
            Rows::F32(v) => {
                v.clear();
                self.chunk(
                    max,
                    |t| fast_float2::parse::<f32, _>(t).ok(),
                    |r| GaussianPair::new(r[0], r[1], r[2], r[3]).invalid_field(param),
                    |r| v.push(GaussianPair::new(r[0], r[1], r[2], r[3])),
                )
            }
            Rows::F64(v) => {
                v.clear();
                let make = |r: [f64; 4]| GaussianPair64 {
                    mu1: r[0],
                    sigma1: r[1],
                    mu2: r[2],
                    sigma2: r[3],
                };
                self.chunk(
                    max,
                    |t| fast_float2::parse::<f64, _>(t).ok(),
                    |r| make(r).invalid_field(param),
                    |r| v.push(make(r)),
                )
            }
        }
    }
}

pub fn field_index(f: Field) -> usize {
    match f {
        Field::Mu1 => 0,
        Field::Sigma1 => 1,
        Field::Mu2 => 2,
        Field::Sigma2 => 3,
    }
}
