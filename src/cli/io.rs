//! Streaming CSV input and atomic CSV output.

use super::CliError;
use gaussdiv::{Field, GaussianPair, GaussianPair64};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Accepted header names per field (first is canonical).
const NAMES: [(Field, &[&str]); 4] = [
    (Field::Mu1, &["mu1"]),
    (Field::Sigma1, &["sigma1", "s1"]),
    (Field::Mu2, &["mu2"]),
    (Field::Sigma2, &["sigma2", "s2"]),
];

/// Reads pairs from a CSV file or standard input, chunk by chunk.
pub struct PairReader {
    reader: csv::Reader<Box<dyn Read>>,
    cols: [usize; 4],
    label: String,
    record: csv::ByteRecord,
    rows: u64,
    reject_invalid: bool,
}

impl PairReader {
    /// Open `path` (`None` or `-`: standard input) and read its header.
    pub fn open(path: Option<&Path>, reject_invalid: bool) -> Result<PairReader, CliError> {
        let (source, label): (Box<dyn Read>, String) = match path {
            None => (Box::new(io::stdin().lock()), "<stdin>".into()),
            Some(p) if p.as_os_str() == "-" => (Box::new(io::stdin().lock()), "<stdin>".into()),
            Some(p) => {
                let f = File::open(p)
                    .map_err(|e| CliError::input(format!("cannot open {}: {e}", p.display())))?;
                (
                    Box::new(io::BufReader::with_capacity(1 << 20, f)),
                    p.display().to_string(),
                )
            }
        };
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
                "{label}: empty input: expected a header naming mu1,sigma1,mu2,sigma2"
            )));
        }
        let mut cols = [0usize; 4];
        let mut missing = Vec::new();
        for (i, (field, aliases)) in NAMES.iter().enumerate() {
            match names.iter().position(|n| aliases.contains(&n.as_str())) {
                Some(c) => cols[i] = c,
                None => missing.push(field.name()),
            }
        }
        if !missing.is_empty() {
            return Err(CliError::input(format!(
                "{label}: the header lacks column(s) {} (found: {})",
                missing.join(", "),
                names.join(",")
            )));
        }
        Ok(PairReader {
            reader,
            cols,
            label,
            record: csv::ByteRecord::new(),
            rows: 0,
            reject_invalid,
        })
    }

    /// Read up to `max` rows, parsing with `parse`, pushing each row's four values.
    fn chunk<T: Copy + Default>(
        &mut self,
        max: usize,
        parse: impl Fn(&str) -> Option<T>,
        check: impl Fn([T; 4]) -> Option<(Field, &'static str)>,
        mut push: impl FnMut([T; 4]),
    ) -> Result<usize, CliError> {
        let mut n = 0;
        while n < max {
            let more = self
                .reader
                .read_byte_record(&mut self.record)
                .map_err(|e| CliError::input(format!("{}: malformed CSV: {e}", self.label)))?;
            if !more {
                break;
            }
            let line = self.record.position().map_or(0, |p| p.line());
            self.rows += 1;
            let mut row = [T::default(); 4];
            for (i, slot) in row.iter_mut().enumerate() {
                let raw = self.record.get(self.cols[i]).unwrap_or(b"");
                let parsed = std::str::from_utf8(raw).ok().and_then(&parse);
                match parsed {
                    Some(v) => *slot = v,
                    None => {
                        return Err(CliError::input(format!(
                        "{}: line {line} (data row {}), column {}: cannot parse {:?} as a number",
                        self.label,
                        self.rows,
                        NAMES[i].0.name(),
                        String::from_utf8_lossy(raw)
                    )))
                    }
                }
            }
            if self.reject_invalid {
                if let Some((field, reason)) = check(row) {
                    let i = field_index(field);
                    let raw = self.record.get(self.cols[i]).unwrap_or(b"");
                    return Err(CliError::input(format!(
                        "{}: line {line} (data row {}), column {}: invalid value {:?}: {reason} \
                         (use --on-invalid nan to write NaN for such rows)",
                        self.label,
                        self.rows,
                        field.name(),
                        String::from_utf8_lossy(raw)
                    )));
                }
            }
            push(row);
            n += 1;
        }
        Ok(n)
    }

    /// Read up to `max` rows as f32 pairs into `out` (cleared first).
    pub fn chunk_f32(
        &mut self,
        max: usize,
        out: &mut Vec<GaussianPair>,
    ) -> Result<usize, CliError> {
        out.clear();
        self.chunk(
            max,
            |t| t.parse::<f32>().ok(),
            |r| gaussdiv::validate::check_pair(&GaussianPair::new(r[0], r[1], r[2], r[3])),
            |r| out.push(GaussianPair::new(r[0], r[1], r[2], r[3])),
        )
    }

    /// Read up to `max` rows as f64 pairs into `out` (cleared first).
    pub fn chunk_f64(
        &mut self,
        max: usize,
        out: &mut Vec<GaussianPair64>,
    ) -> Result<usize, CliError> {
        out.clear();
        let make = |r: [f64; 4]| GaussianPair64 {
            mu1: r[0],
            sigma1: r[1],
            mu2: r[2],
            sigma2: r[3],
        };
        self.chunk(
            max,
            |t| t.parse::<f64>().ok(),
            |r| gaussdiv::validate::check_pair_f64(&make(r)),
            |r| out.push(make(r)),
        )
    }
}

fn field_index(f: Field) -> usize {
    match f {
        Field::Mu1 => 0,
        Field::Sigma1 => 1,
        Field::Mu2 => 2,
        Field::Sigma2 => 3,
    }
}

/// A value in the shortest form that parses back to the same float.
pub trait Shortest: Copy {
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

/// CSV output to a file (through a temporary file renamed on success) or to standard output.
pub struct CsvOut {
    out: BufWriter<Box<dyn Write>>,
    temp: Option<(tempfile::TempPath, PathBuf)>,
    label: String,
    line: Vec<u8>,
    ryu: ryu::Buffer,
}

impl CsvOut {
    /// Create the output. Nothing appears at `path` until [`CsvOut::finish`].
    pub fn create(path: Option<&Path>) -> Result<CsvOut, CliError> {
        let (sink, temp, label): (Box<dyn Write>, _, String) = match path {
            None => (Box::new(io::stdout().lock()), None, "<stdout>".into()),
            Some(p) if p.as_os_str() == "-" => {
                (Box::new(io::stdout().lock()), None, "<stdout>".into())
            }
            Some(p) if p.exists() && !p.metadata().map(|m| m.is_file()).unwrap_or(false) => {
                // A device or pipe (/dev/null, /dev/full, a FIFO): write to it directly,
                // never replace it.
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(p)
                    .map_err(|e| CliError::input(format!("cannot open {}: {e}", p.display())))?;
                (Box::new(f), None, p.display().to_string())
            }
            Some(p) => {
                let dir = match p.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                let tmp = tempfile::Builder::new()
                    .prefix(".gaussdiv-")
                    .suffix(".tmp")
                    .tempfile_in(&dir)
                    .map_err(|e| {
                        CliError::input(format!(
                            "cannot create a temporary file in {}: {e}",
                            dir.display()
                        ))
                    })?;
                let (file, temp_path) = tmp.into_parts();
                (
                    Box::new(file),
                    Some((temp_path, p.to_path_buf())),
                    p.display().to_string(),
                )
            }
        };
        Ok(CsvOut {
            out: BufWriter::with_capacity(1 << 20, sink),
            temp,
            label,
            line: Vec::with_capacity(256),
            ryu: ryu::Buffer::new(),
        })
    }

    fn io(&self, e: io::Error) -> CliError {
        CliError::input(format!("cannot write {}: {e}", self.label))
    }

    /// Write the header line.
    pub fn header(&mut self, names: &[&str]) -> Result<(), CliError> {
        let text = format!("{}\n", names.join(","));
        let r = self.out.write_all(text.as_bytes());
        r.map_err(|e| self.io(e))
    }

    /// Write rows: `flat` holds `k` values per row; `order[j]` is the index in
    /// a row of the j-th column to print.
    pub fn rows<T: Shortest>(
        &mut self,
        flat: &[T],
        k: usize,
        order: &[usize],
    ) -> Result<(), CliError> {
        let mut block = std::mem::take(&mut self.line);
        for row in flat.chunks_exact(k) {
            for (j, &c) in order.iter().enumerate() {
                if j > 0 {
                    block.push(b',');
                }
                row[c].push(&mut block, &mut self.ryu);
            }
            block.push(b'\n');
            if block.len() >= 1 << 16 {
                let r = self.out.write_all(&block);
                r.map_err(|e| self.io(e))?;
                block.clear();
            }
        }
        let r = self.out.write_all(&block);
        block.clear();
        self.line = block;
        r.map_err(|e| self.io(e))
    }

    /// Flush, sync and move the temporary file into place.
    pub fn finish(mut self) -> Result<(), CliError> {
        let r = self.out.flush();
        r.map_err(|e| self.io(e))?;
        if let Some((temp, target)) = self.temp.take() {
            let file = File::open(&temp).and_then(|f| f.sync_all());
            file.map_err(|e| self.io(e))?;
            temp.persist(&target).map_err(|e| {
                CliError::input(format!(
                    "cannot move the output into {}: {e}",
                    target.display()
                ))
            })?;
        }
        Ok(())
    }
}
