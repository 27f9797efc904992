//! Atomic output: the destination (a temporary file renamed on success),
//! and the CSV and NPY writers (Parquet and Arrow IPC in `table_out`).

use super::columns::{push_csv_field, Kept, KeptColumn, TextColumn};
use super::io::Format;
use super::npy;
use super::CliError;
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A value in the shortest form that parses back to the same float.
pub trait Shortest: Copy + bytemuck::Pod {
    /// Append the text of `self`.
    fn push(self, buf: &mut Vec<u8>, ryu: &mut ryu::Buffer);
}

macro_rules! shortest {
    ($t:ty) => {
        impl Shortest for $t {
            fn push(self, buf: &mut Vec<u8>, ryu: &mut ryu::Buffer) {
                if self.is_finite() {
                    buf.extend_from_slice(ryu.format_finite(self).as_bytes());
                } else if self.is_nan() {
                    buf.extend_from_slice(b"NaN");
                } else if self > 0.0 {
                    buf.extend_from_slice(b"inf");
                } else {
                    buf.extend_from_slice(b"-inf");
                }
            }
        }
    };
}
shortest!(f32);
shortest!(f64);

/// One chunk of results: `k` values per row in canonical metric order.
pub enum Values {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// Where results go.
pub trait Sink: Send {
    /// Write rows of `k` values; `order[j]` is the index in a row of the j-th
    /// output column; `kept` holds the same rows' kept columns (written
    /// first); `group_end` closes an output row group where the format has them.
    fn write(
        &mut self,
        values: &Values,
        k: usize,
        order: &[usize],
        kept: Option<&Kept>,
        group_end: bool,
    ) -> Result<(), CliError>;
    /// Complete the output (flush, fix up headers, rename into place).
    fn finish(self: Box<Self>) -> Result<(), CliError>;
}

trait WriteSeek: Write + Seek + Send {}
impl<T: Write + Seek + Send> WriteSeek for T {}

/// A writable destination: a temporary file renamed on success, a device
/// written in place, or standard output.
pub(crate) struct Target {
    out: BufWriter<Box<dyn WriteSeek>>,
    temp: Option<(tempfile::TempPath, PathBuf)>,
    label: String,
    seekable: bool,
}

/// Standard output as a (never seeked) `WriteSeek`.
struct Stdout(io::Stdout);
impl Write for Stdout {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}
impl Seek for Stdout {
    fn seek(&mut self, _: SeekFrom) -> io::Result<u64> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "standard output cannot seek",
        ))
    }
}

impl Write for Target {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.out.write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl Target {
    /// The output `path` (`None` or `-`: standard output).
    pub(crate) fn create(path: Option<&Path>) -> Result<Target, CliError> {
        let (sink, temp, label, seekable): (Box<dyn WriteSeek>, _, String, bool) = match path {
            None => (
                Box::new(Stdout(io::stdout())),
                None,
                "<stdout>".into(),
                false,
            ),
            Some(p) if p.as_os_str() == "-" => (
                Box::new(Stdout(io::stdout())),
                None,
                "<stdout>".into(),
                false,
            ),
            Some(p) if p.exists() && !p.metadata().map(|m| m.is_file()).unwrap_or(false) => {
                // A device or pipe (/dev/null, /dev/full, a FIFO): write to it
                // directly, never replace it.
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(p)
                    .map_err(|e| CliError::input(format!("cannot open {}: {e}", p.display())))?;
                (Box::new(f), None, p.display().to_string(), false)
            }
            Some(p) => {
                let dir = match p.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                let mut builder = tempfile::Builder::new();
                builder.prefix(".gaussdiv-").suffix(".tmp");
                // The permissions a plain create would give (0666 less the umask),
                // or those of the file being replaced.
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = std::fs::metadata(p).map_or(0o666, |m| m.permissions().mode());
                    builder.permissions(std::fs::Permissions::from_mode(mode));
                }
                let tmp = builder.tempfile_in(&dir).map_err(|e| {
                    CliError::input(format!(
                        "cannot create a temporary file in {}: {e}",
                        dir.display()
                    ))
                })?;
                let (file, temp_path) = tmp.into_parts();
                super::signals::register_temp(&temp_path);
                (
                    Box::new(file),
                    Some((temp_path, p.to_path_buf())),
                    p.display().to_string(),
                    true,
                )
            }
        };
        Ok(Target {
            out: BufWriter::with_capacity(1 << 20, sink),
            temp,
            label,
            seekable,
        })
    }

    fn io(&self, e: io::Error) -> CliError {
        CliError::input(format!("cannot write {}: {e}", self.label))
    }

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), CliError> {
        let r = self.out.write_all(bytes);
        r.map_err(|e| self.io(e))
    }

    /// Overwrite bytes at `offset` (seekable targets only), then return to the end.
    fn patch(&mut self, offset: u64, bytes: &[u8]) -> Result<(), CliError> {
        let r = (|| {
            self.out.flush()?;
            let f = self.out.get_mut();
            f.seek(SeekFrom::Start(offset))?;
            f.write_all(bytes)?;
            f.seek(SeekFrom::End(0))?;
            Ok(())
        })();
        r.map_err(|e: io::Error| self.io(e))
    }

    /// The name of the destination in messages.
    #[cfg_attr(not(feature = "parquet"), allow(dead_code))]
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// Flush, and move a temporary file into place.
    pub(crate) fn finish(mut self) -> Result<(), CliError> {
        let r = self.out.flush();
        r.map_err(|e| self.io(e))?;
        if let Some((temp, target)) = self.temp.take() {
            let synced = File::open(&temp).and_then(|f| f.sync_all());
            synced.map_err(|e| self.io(e))?;
            let temp_name = temp.to_path_buf();
            super::signals::persist_temp(&temp_name, || {
                temp.persist(&target).map(|_| ()).map_err(|e| {
                    CliError::input(format!(
                        "cannot move the output into {}: {e}",
                        target.display()
                    ))
                })
            })?;
        }
        Ok(())
    }
}

/// CSV output.
pub struct CsvSink {
    target: Target,
    block: Vec<u8>,
    ryu: ryu::Buffer,
}

/// A kept column's cells as CSV fields.
enum KeptCells<'a> {
    Text(&'a TextColumn),
    #[cfg(feature = "parquet")]
    Arrow(super::table::TextCells<'a>),
}

impl KeptCells<'_> {
    fn push(&self, row: usize, buf: &mut Vec<u8>) {
        match self {
            KeptCells::Text(t) => push_csv_field(buf, t.get(row)),
            #[cfg(feature = "parquet")]
            KeptCells::Arrow(a) => a.push(row, buf),
        }
    }
}

impl CsvSink {
    fn rows<T: Shortest>(
        &mut self,
        flat: &[T],
        k: usize,
        order: &[usize],
        kept: Option<&Kept>,
    ) -> Result<(), CliError> {
        let cells: Vec<KeptCells> = match kept {
            None => Vec::new(),
            Some(Kept::Text(cols)) => cols.iter().map(KeptCells::Text).collect(),
            #[cfg(feature = "parquet")]
            Some(Kept::Arrow(cols)) => cols
                .iter()
                .map(|a| super::table::TextCells::new(a.as_ref()).map(KeptCells::Arrow))
                .collect::<Result<_, _>>()?,
        };
        let mut block = std::mem::take(&mut self.block);
        block.clear();
        for (i, row) in flat.chunks_exact(k).enumerate() {
            for cell in &cells {
                cell.push(i, &mut block);
                block.push(b',');
            }
            for (j, &c) in order.iter().enumerate() {
                if j > 0 {
                    block.push(b',');
                }
                if let Some(v) = row.get(c) {
                    v.push(&mut block, &mut self.ryu);
                }
            }
            block.push(b'\n');
            if block.len() >= 1 << 16 {
                self.target.write_all(&block)?;
                block.clear();
            }
        }
        let r = self.target.write_all(&block);
        self.block = block;
        r
    }
}

impl Sink for CsvSink {
    fn write(
        &mut self,
        values: &Values,
        k: usize,
        order: &[usize],
        kept: Option<&Kept>,
        _group_end: bool,
    ) -> Result<(), CliError> {
        match values {
            Values::F32(v) => self.rows(v, k, order, kept),
            Values::F64(v) => self.rows(v, k, order, kept),
        }
    }

    fn finish(self: Box<Self>) -> Result<(), CliError> {
        self.target.finish()
    }
}

/// NPY output: shape (N, k) in the output precision, C order. The header is
/// written with room for any N and patched with the final N at the end.
pub struct NpySink {
    target: Target,
    rows: u64,
    cols: usize,
    descr: &'static str,
    block: Vec<u8>,
}

impl Sink for NpySink {
    fn write(
        &mut self,
        values: &Values,
        k: usize,
        order: &[usize],
        _kept: Option<&Kept>,
        _group_end: bool,
    ) -> Result<(), CliError> {
        let mut block = std::mem::take(&mut self.block);
        block.clear();
        match values {
            Values::F32(v) => npy::reorder_into(v, k, order, &mut block),
            Values::F64(v) => npy::reorder_into(v, k, order, &mut block),
        }
        self.rows += (block.len() / (order.len() * npy::descr_size(self.descr))) as u64;
        let r = self.target.write_all(&block);
        self.block = block;
        r
    }

    fn finish(mut self: Box<Self>) -> Result<(), CliError> {
        let header = npy::header(self.descr, self.rows, self.cols);
        self.target.patch(0, &header)?;
        self.target.finish()
    }
}

/// Create the output for `path` (`None`/`-`: CSV on standard output) with
/// the given measure column names and precision, after the `kept` columns.
pub fn create_sink(
    path: Option<&Path>,
    names: &[&str],
    f64_out: bool,
    kept: &[KeptColumn],
) -> Result<Box<dyn Sink>, CliError> {
    let format = Format::of(path);
    if !kept.is_empty() && format == Format::Npy {
        return Err(CliError::input(
            "NPY output holds only the measures: --keep and --keep-all need CSV, Parquet or \
             Arrow output",
        ));
    }
    if let Some(k) = kept.iter().find(|k| names.contains(&k.name.as_str())) {
        return Err(CliError::input(format!(
            "--keep: the kept column {:?} has the name of an output column",
            k.name
        )));
    }
    #[cfg(not(feature = "parquet"))]
    if format.is_table() {
        return Err(super::io::no_tables());
    }
    let mut target = Target::create(path)?;
    match format {
        #[cfg(feature = "parquet")]
        Format::Parquet | Format::Arrow => {
            super::table::create_sink(target, format, names, f64_out, kept)
        }
        #[cfg(not(feature = "parquet"))]
        Format::Parquet | Format::Arrow => Err(super::io::no_tables()),
        Format::Csv => {
            #[cfg(feature = "parquet")]
            super::table_out::check_csv_kept(kept)?;
            let mut header = Vec::new();
            for k in kept {
                push_csv_field(&mut header, k.name.as_bytes());
                header.push(b',');
            }
            header.extend_from_slice(names.join(",").as_bytes());
            header.push(b'\n');
            target.write_all(&header)?;
            Ok(Box::new(CsvSink {
                target,
                block: Vec::with_capacity(1 << 17),
                ryu: ryu::Buffer::new(),
            }))
        }
        Format::Npy => {
            if !target.seekable {
                return Err(CliError::input(format!(
                    "{}: NPY output needs a regular file (its header is completed at the end)",
                    target.label
                )));
            }
            let descr = if f64_out { "<f8" } else { "<f4" };
            // Placeholder with the widest N, patched in finish().
            let header = npy::header(descr, u64::MAX, names.len());
            target.write_all(&header)?;
            Ok(Box::new(NpySink {
                target,
                rows: 0,
                cols: names.len(),
                descr,
                block: Vec::new(),
            }))
        }
    }
}
