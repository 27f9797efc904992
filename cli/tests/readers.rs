//! The tool's CSV and NPY readers on hostile bytes (a proptest smoke version
//! of the fuzz targets in fuzz/, run in CI): never a panic, always rows or an
//! error with a message, and the rows they do return are exactly the ones
//! written.
#![allow(dead_code)]

use gaussdiv_cli as cli;
use gaussdiv_cli::io::{source_from_reader, Format, Rows};
use proptest::prelude::*;
use std::io::Cursor;

/// Read everything; Ok(rows) or Err(message).
pub fn read_all(
    bytes: &[u8],
    format: Format,
    f64_mode: bool,
    reject: bool,
) -> Result<usize, String> {
    read_all_param(bytes, format, f64_mode, reject, gaussdiv::Param::Std)
}

/// [`read_all`] with inputs in a given parameterisation.
pub fn read_all_param(
    bytes: &[u8],
    format: Format,
    f64_mode: bool,
    reject: bool,
    param: gaussdiv::Param,
) -> Result<usize, String> {
    let reader = Box::new(Cursor::new(bytes.to_vec()));
    let mut src =
        source_from_reader(reader, "fuzz".into(), format, reject, param).map_err(|e| e.message)?;
    let mut rows = if f64_mode {
        Rows::F64(Vec::new())
    } else {
        Rows::F32(Vec::new())
    };
    let mut total = 0;
    loop {
        match src.read(7, &mut rows) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                assert!(n <= 7 && rows.len() == n);
                total += n;
            }
            Err(e) => {
                assert!(!e.message.is_empty());
                return Err(e.message);
            }
        }
    }
}

fn csv_like() -> impl Strategy<Value = Vec<u8>> {
    let cell = prop_oneof![
        "-?[0-9]{1,3}(\\.[0-9]{0,4})?(e-?[0-9]{1,3})?",
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("".to_string()),
        Just("\"1\"".to_string()),
        "[a-z\"\\\\,]{0,3}",
    ];
    let header = prop::sample::select(vec![
        "mu1,sigma1,mu2,sigma2",
        "sigma2,mu1,x,sigma1,mu2",
        "mu1,s1,mu2,s2",
        "mu1,sigma1,mu2",
        "",
    ]);
    (
        header,
        prop::collection::vec(prop::collection::vec(cell, 0..6), 0..20),
    )
        .prop_map(|(h, rows)| {
            let mut s = format!("{h}\n");
            for r in rows {
                s.push_str(&r.join(","));
                s.push('\n');
            }
            s.into_bytes()
        })
}

fn npy_like() -> impl Strategy<Value = Vec<u8>> {
    let descr = prop::sample::select(vec!["<f4", "<f8", ">f4", "<i4", "|u1", "<f2"]);
    let shape = prop::sample::select(vec![
        "(3, 4)",
        "(0, 4)",
        "(3, 5)",
        "(12,)",
        "(2, 4, 1)",
        "(99999999999999999999, 4)",
        "(",
        "()",
    ]);
    (
        descr,
        any::<bool>(),
        shape,
        prop::collection::vec(any::<u8>(), 0..300),
        0usize..3,
    )
        .prop_map(|(d, f, sh, data, version)| {
            let dict = format!(
                "{{'descr': '{d}', 'fortran_order': {}, 'shape': {sh}, }}",
                if f { "True" } else { "False" }
            );
            let mut h = b"\x93NUMPY".to_vec();
            match version {
                0 => {
                    h.extend_from_slice(&[1, 0]);
                    h.extend_from_slice(&(dict.len() as u16).to_le_bytes());
                }
                1 => {
                    h.extend_from_slice(&[2, 0]);
                    h.extend_from_slice(&(dict.len() as u32).to_le_bytes());
                }
                _ => {
                    h.extend_from_slice(&[9, 0]);
                }
            }
            h.extend_from_slice(dict.as_bytes());
            h.extend_from_slice(&data);
            h
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn csv_never_panics(bytes in prop_oneof![csv_like(), prop::collection::vec(any::<u8>(), 0..200)], f64_mode: bool, reject: bool, param in prop::sample::select(gaussdiv::Param::ALL.to_vec())) {
        let _ = read_all_param(&bytes, Format::Csv, f64_mode, reject, param);
    }

    #[test]
    fn npy_never_panics(bytes in prop_oneof![npy_like(), prop::collection::vec(any::<u8>(), 0..200)], f64_mode: bool, reject: bool, param in prop::sample::select(gaussdiv::Param::ALL.to_vec())) {
        let _ = read_all_param(&bytes, Format::Npy, f64_mode, reject, param);
    }

    #[test]
    fn npy_roundtrip(rows in prop::collection::vec(any::<[u32; 4]>(), 0..50)) {
        let values: Vec<f32> = rows.iter().flatten().map(|&b| f32::from_bits(b)).collect();
        let mut h = cli::npy::header("<f4", rows.len() as u64, 4);
        h.extend_from_slice(bytemuck::cast_slice(&values));
        let reader = Box::new(Cursor::new(h));
        let mut src = source_from_reader(reader, "t".into(), Format::Npy, false, gaussdiv::Param::Std).unwrap();
        let mut out = Rows::F32(Vec::new());
        let n = src.read(1000, &mut out).unwrap();
        prop_assert_eq!(n, rows.len());
        if let Rows::F32(v) = out {
            let got: &[u32] = bytemuck::cast_slice(&v);
            let want: Vec<u32> = rows.iter().flatten().copied().collect();
            prop_assert_eq!(got, &want[..]);
        }
    }
}

/// Regressions found by fuzzing (see RELIABILITY.md) go here as fixed inputs.
#[test]
fn regressions() {
    // Found by npy_roundtrip: a float32 file of shape (0, 4) panicked in a
    // bytemuck cast of the (unaligned, empty) byte buffer.
    let empty = cli::npy::header("<f4", 0, 4);
    assert_eq!(read_all(&empty, Format::Npy, false, true), Ok(0));
    // ... and an odd-aligned buffer with rows must be read exactly.
    let mut one = cli::npy::header("<f4", 1, 4);
    one.extend_from_slice(bytemuck::cast_slice(&[0.5f32, 1.0, 0.25, 2.0]));
    assert_eq!(read_all(&one, Format::Npy, false, true), Ok(1));
    let cases: &[(&[u8], Format)] = &[
        (b"", Format::Csv),
        (b"\xff\xfe", Format::Csv),
        (b"mu1,sigma1,mu2,sigma2\n1,2,3", Format::Csv),
        (b"\x93NUMPY", Format::Npy),
        (b"\x93NUMPY\x01\x00\xff\xff", Format::Npy),
    ];
    for (bytes, format) in cases {
        for f64_mode in [false, true] {
            let _ = read_all(bytes, *format, f64_mode, true);
        }
    }
}
