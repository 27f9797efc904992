//! NumPy `.npy` input (float32/float64, C order, shape (N, 4)) and output.

use super::io::{field_index, invalid_value, Rows, Shortest, Source};
use super::CliError;
use gaussdiv::{Field, GaussianPair, GaussianPair64, Param};
use std::io::Read;

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Bytes per value of a descr (`<f4` → 4, `<f8` → 8).
pub fn descr_size(descr: &str) -> usize {
    if descr.ends_with('8') {
        8
    } else {
        4
    }
}

/// A version-1.0 header for shape (rows, cols), always of the same length
/// whatever `rows` is (so that it can be patched in place), padded to a
/// multiple of 64 bytes as the format asks.
pub fn header(descr: &str, rows: u64, cols: usize) -> Vec<u8> {
    let dict = |r: u64| {
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({r}, {cols}), }}")
    };
    let widest = dict(u64::MAX).len();
    let total = (10 + widest + 1).next_multiple_of(64);
    let text = dict(rows);
    let mut h = Vec::with_capacity(total);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&[1, 0]);
    h.extend_from_slice(&((total - 10) as u16).to_le_bytes());
    h.extend_from_slice(text.as_bytes());
    h.resize(total - 1, b' ');
    h.push(b'\n');
    h
}

/// Append rows of `values` (k per row, canonical order) as little-endian
/// bytes, columns in `order`.
pub fn reorder_into<T: Shortest>(values: &[T], k: usize, order: &[usize], out: &mut Vec<u8>) {
    let identity = order.len() == k && order.iter().enumerate().all(|(i, &o)| i == o);
    if identity {
        out.extend_from_slice(bytemuck::cast_slice(values));
        return;
    }
    out.reserve(values.len() / k.max(1) * order.len() * std::mem::size_of::<T>());
    for row in values.chunks_exact(k) {
        for &c in order {
            if let Some(v) = row.get(c) {
                out.extend_from_slice(bytemuck::bytes_of(v));
            }
        }
    }
}

/// The parsed header of an input file.
#[derive(Debug, PartialEq)]
pub struct Header {
    pub f64: bool,
    pub big_endian: bool,
    pub rows: u64,
}

fn value_after<'a>(dict: &'a str, key: &str) -> Option<&'a str> {
    let i = dict
        .find(&format!("'{key}'"))
        .or_else(|| dict.find(&format!("\"{key}\"")))?;
    let rest = &dict[i + key.len() + 2..];
    let colon = rest.find(':')?;
    Some(rest[colon + 1..].trim_start())
}

/// Parse the dictionary of an NPY header of an (N, 4) array of pairs.
pub fn parse_dict(dict: &str, label: &str) -> Result<Header, CliError> {
    parse_dict_cols(dict, label, 4, "(mu1, a1, mu2, a2)")
}

/// Parse the dictionary of an NPY header of an (N, `cols`) array.
pub fn parse_dict_cols(
    dict: &str,
    label: &str,
    cols: u64,
    meaning: &str,
) -> Result<Header, CliError> {
    let a = parse_array_dict(dict, label)?;
    match a.shape.as_slice() {
        [rows, c] if *c == cols => Ok(Header {
            f64: a.f64,
            big_endian: a.big_endian,
            rows: *rows,
        }),
        _ => Err(CliError::input(format!(
            "{label}: expected an array of shape (N, {cols}) {meaning}, found shape {}",
            shape_text(&a.shape)
        ))),
    }
}

/// The header of an NPY array of any shape.
#[derive(Debug, PartialEq)]
pub struct ArrayHeader {
    pub f64: bool,
    pub big_endian: bool,
    pub shape: Vec<u64>,
}

/// `(3, 4)`, `(5,)`, `()` as NumPy writes a shape.
pub fn shape_text(shape: &[u64]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Parse the dictionary of an NPY header: a float32/float64 array in C
/// order, of any shape.
pub fn parse_array_dict(dict: &str, label: &str) -> Result<ArrayHeader, CliError> {
    let bad = |what: &str| {
        CliError::input(format!(
            "{label}: not a valid NPY header: {what} (header: {dict:?})"
        ))
    };
    let descr_v = value_after(dict, "descr").ok_or_else(|| bad("no 'descr'"))?;
    let quote = descr_v.chars().next().ok_or_else(|| bad("empty 'descr'"))?;
    if quote != '\'' && quote != '"' {
        return Err(bad(
            "'descr' is not a string (structured dtypes are not supported)",
        ));
    }
    let end = descr_v[1..]
        .find(quote)
        .ok_or_else(|| bad("unterminated 'descr'"))?;
    let descr = &descr_v[1..1 + end];
    let (big_endian, f64) = match descr {
        "<f4" | "=f4" | "|f4" => (false, false),
        "<f8" | "=f8" | "|f8" => (false, true),
        ">f4" => (true, false),
        ">f8" => (true, true),
        other => {
            return Err(CliError::input(format!(
            "{label}: unsupported NPY dtype {other:?}: expected float32 ('<f4') or float64 ('<f8')"
        )))
        }
    };
    let fortran = value_after(dict, "fortran_order").ok_or_else(|| bad("no 'fortran_order'"))?;
    if fortran.starts_with("True") {
        return Err(CliError::input(format!(
            "{label}: the array is in Fortran order; save it in C order (np.ascontiguousarray)"
        )));
    }
    let shape_v = value_after(dict, "shape").ok_or_else(|| bad("no 'shape'"))?;
    let close = shape_v
        .find(')')
        .ok_or_else(|| bad("unterminated 'shape'"))?;
    let shape: Option<Vec<u64>> = shape_v
        .get(1..close)
        .ok_or_else(|| bad("'shape' is not a tuple"))?
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|d| d.parse().ok())
        .collect();
    let shape = shape.ok_or_else(|| bad("'shape' is not a tuple of integers"))?;
    Ok(ArrayHeader {
        f64,
        big_endian,
        shape,
    })
}

/// Read the magic, version and header dictionary of an NPY stream.
pub fn read_header_dict(reader: &mut dyn Read, label: &str) -> Result<String, CliError> {
    let io =
        |e: std::io::Error| CliError::input(format!("{label}: cannot read the NPY header: {e}"));
    let mut pre = [0u8; 8];
    reader.read_exact(&mut pre).map_err(io)?;
    if &pre[..6] != MAGIC {
        return Err(CliError::input(format!(
            "{label}: not an NPY file (bad magic)"
        )));
    }
    let len = match pre[6] {
        1 => {
            let mut b = [0u8; 2];
            reader.read_exact(&mut b).map_err(io)?;
            u64::from(u16::from_le_bytes(b))
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            reader.read_exact(&mut b).map_err(io)?;
            u64::from(u32::from_le_bytes(b))
        }
        v => {
            return Err(CliError::input(format!(
                "{label}: unsupported NPY version {v}"
            )))
        }
    };
    if len > 1 << 20 {
        return Err(CliError::input(format!(
            "{label}: NPY header of {len} bytes is implausible"
        )));
    }
    let mut dict = vec![0u8; len as usize];
    reader.read_exact(&mut dict).map_err(io)?;
    Ok(String::from_utf8_lossy(&dict).into_owned())
}

/// Reads pairs from an NPY file.
pub struct NpySource {
    reader: Box<dyn Read + Send>,
    label: String,
    header: Header,
    rows_read: u64,
    reject_invalid: bool,
    param: Param,
    buf: Vec<u8>,
}

impl NpySource {
    pub fn new(
        mut reader: Box<dyn Read + Send>,
        label: String,
        reject_invalid: bool,
        param: Param,
    ) -> Result<NpySource, CliError> {
        let dict = read_header_dict(&mut reader, &label)?;
        let header = parse_dict(&dict, &label)?;
        Ok(NpySource {
            reader,
            label,
            header,
            rows_read: 0,
            reject_invalid,
            param,
            buf: Vec::new(),
        })
    }

    /// Read the raw bytes of up to `max` rows; Ok(rows).
    fn fill(&mut self, max: usize) -> Result<usize, CliError> {
        let left = self.header.rows - self.rows_read;
        let n = (max as u64).min(left) as usize;
        let width = if self.header.f64 { 32 } else { 16 };
        self.buf.resize(n * width, 0);
        let mut got = 0;
        while got < self.buf.len() {
            let Some(rest) = self.buf.get_mut(got..) else {
                break;
            };
            match self.reader.read(rest) {
                Ok(0) => {
                    return Err(CliError::input(format!(
                        "{}: truncated: the header says {} rows, the data ends after {}",
                        self.label,
                        self.header.rows,
                        self.rows_read + (got / width) as u64
                    )))
                }
                Ok(k) => got += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(CliError::input(format!("{}: read error: {e}", self.label))),
            }
        }
        if n == 0 && left == 0 {
            // At the end: anything more is not part of the array.
            let mut probe = [0u8; 1];
            if matches!(self.reader.read(&mut probe), Ok(1)) {
                return Err(CliError::input(format!(
                    "{}: {} bytes of data expected after the header, but there are more",
                    self.label,
                    self.header.rows * width as u64
                )));
            }
        }
        Ok(n)
    }

    fn values<T: bytemuck::Pod>(&self, swap: fn(T) -> T) -> impl Iterator<Item = [T; 4]> + '_ {
        let big = self.header.big_endian;
        let width = 4 * std::mem::size_of::<T>();
        self.buf.chunks_exact(width).map(move |row| {
            let mut v: [T; 4] = bytemuck::pod_read_unaligned(row);
            if big {
                v = v.map(swap);
            }
            v
        })
    }

    fn check<T: Copy + std::fmt::Debug>(
        &self,
        start: u64,
        rows: impl Iterator<Item = [T; 4]>,
        check: impl Fn([T; 4]) -> Option<(Field, &'static str)>,
        text: impl Fn(&[T; 4], usize) -> String,
    ) -> Result<(), CliError> {
        if !self.reject_invalid {
            return Ok(());
        }
        for (i, r) in rows.enumerate() {
            if let Some((field, reason)) = check(r) {
                let place = format!("row {} (0-based)", start + i as u64);
                return Err(invalid_value(
                    &self.label,
                    &place,
                    field,
                    self.param,
                    &text(&r, field_index(field)),
                    reason,
                ));
            }
        }
        Ok(())
    }
}

impl Source for NpySource {
    fn read(&mut self, max: usize, out: &mut Rows) -> Result<usize, CliError> {
        let start = self.rows_read;
        let param = self.param;
        let n = self.fill(max)?;
        self.rows_read += n as u64;
        let f64_in = self.header.f64;
        match out {
            Rows::F32(v) => {
                v.clear();
                if f64_in {
                    // Rounded to f32; a value out of f32 range becomes ±inf and is reported.
                    self.check(
                        start,
                        self.values(f64::byte_swapped),
                        |r| {
                            let p = GaussianPair::new(
                                r[0] as f32,
                                r[1] as f32,
                                r[2] as f32,
                                r[3] as f32,
                            );
                            p.invalid_field(param)
                        },
                        |r, i| format!("{:e} (as f32: {:e})", at(r, i), at(r, i) as f32),
                    )?;
                    v.extend(self.values(f64::byte_swapped).map(|r| {
                        GaussianPair::new(r[0] as f32, r[1] as f32, r[2] as f32, r[3] as f32)
                    }));
                } else {
                    self.check(
                        start,
                        self.values(f32::byte_swapped),
                        |r| GaussianPair::new(r[0], r[1], r[2], r[3]).invalid_field(param),
                        |r, i| format!("{:e}", at(r, i)),
                    )?;
                    if self.header.big_endian {
                        v.extend(
                            self.values(f32::byte_swapped)
                                .map(|r| GaussianPair::new(r[0], r[1], r[2], r[3])),
                        );
                    } else {
                        // The byte buffer need not be 4-byte aligned (an empty Vec's is not):
                        // cast when it is, read unaligned otherwise.
                        match bytemuck::try_cast_slice::<u8, GaussianPair>(&self.buf) {
                            Ok(rows) => v.extend_from_slice(rows),
                            Err(_) => v.extend(
                                self.buf
                                    .chunks_exact(16)
                                    .map(bytemuck::pod_read_unaligned::<GaussianPair>),
                            ),
                        }
                    }
                }
            }
            Rows::F64(v) => {
                v.clear();
                let make = |r: [f64; 4]| GaussianPair64 {
                    mu1: r[0],
                    sigma1: r[1],
                    mu2: r[2],
                    sigma2: r[3],
                };
                if f64_in {
                    self.check(
                        start,
                        self.values(f64::byte_swapped),
                        |r| make(r).invalid_field(param),
                        |r, i| format!("{:e}", at(r, i)),
                    )?;
                    v.extend(self.values(f64::byte_swapped).map(make));
                } else {
                    let widen = |r: [f32; 4]| make(r.map(f64::from));
                    self.check(
                        start,
                        self.values(f32::byte_swapped),
                        |r| widen(r).invalid_field(param),
                        |r, i| format!("{:e}", at(r, i)),
                    )?;
                    v.extend(self.values(f32::byte_swapped).map(widen));
                }
            }
        }
        Ok(n)
    }
}

/// `r[i]`, or the default outside the row.
fn at<T: Copy + Default>(r: &[T; 4], i: usize) -> T {
    r.get(i).copied().unwrap_or_default()
}

/// Byte-swapping of a float's representation (for big-endian files).
trait SwapBytes: Sized {
    fn byte_swapped(self) -> Self;
}

impl SwapBytes for f32 {
    fn byte_swapped(self) -> f32 {
        f32::from_bits(self.to_bits().swap_bytes())
    }
}

impl SwapBytes for f64 {
    fn byte_swapped(self) -> f64 {
        f64::from_bits(self.to_bits().swap_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_has_fixed_length_and_parses_back() {
        let a = header("<f4", 0, 2);
        let b = header("<f4", 30_000_000, 2);
        let c = header("<f8", u64::MAX, 3);
        assert_eq!(a.len(), b.len());
        assert_eq!(a.len() % 64, 0);
        assert_eq!(c.len() % 64, 0);
        let dict = String::from_utf8_lossy(&b[10..]).into_owned();
        assert!(dict.ends_with('\n'));
        let h = parse_dict(&dict.replace("2)", "4)"), "t").unwrap();
        assert_eq!(
            h,
            Header {
                f64: false,
                big_endian: false,
                rows: 30_000_000
            }
        );
    }

    #[test]
    fn bad_headers_are_errors() {
        for d in [
            "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 4), }",
            "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 4), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 5), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (12,), }",
            "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3, 4), }",
            "{'fortran_order': False}",
            "",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (",
        ] {
            assert!(parse_dict(d, "t").is_err(), "{d}");
        }
    }
}
