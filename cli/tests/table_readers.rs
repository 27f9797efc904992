//! The tool's Parquet and Arrow IPC readers on hostile bytes (a proptest
//! smoke version of fuzz/fuzz_targets/parquet_reader.rs, run in CI): valid
//! files with bytes overwritten or cut off give rows or an error with a
//! message, never a panic out of the reader; intact files give every row.
#![cfg(feature = "parquet")]

use arrow_array::{ArrayRef, Float32Array, Float64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use gaussdiv_cli::io::{source_from_reader, Format, Rows};
use proptest::prelude::*;
use std::io::Cursor;
use std::sync::{Arc, OnceLock};

/// Read everything in chunks of 7 rows; Ok(rows) or Err(message).
fn read_all(bytes: &[u8], format: Format, f64_mode: bool, reject: bool) -> Result<usize, String> {
    let reader = Box::new(Cursor::new(bytes.to_vec()));
    let mut src = source_from_reader(reader, "t".into(), format, reject, gaussdiv::Param::Std)
        .map_err(|e| e.message)?;
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

/// 60 rows (mixed float32 and float64 columns) as Parquet (row groups of 25,
/// Snappy) and as an Arrow IPC file (batches of 25).
fn files() -> &'static (Vec<u8>, Vec<u8>) {
    static FILES: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    FILES.get_or_init(|| {
        let schema = Arc::new(Schema::new(vec![
            Field::new("mu1", DataType::Float32, true),
            Field::new("sigma1", DataType::Float64, true),
            Field::new("mu2", DataType::Float32, true),
            Field::new("sigma2", DataType::Float32, true),
        ]));
        let f = |k: f32| -> ArrayRef {
            Arc::new(Float32Array::from_iter_values(
                (0..60).map(|i| 0.5 + k * i as f32),
            ))
        };
        let d: ArrayRef = Arc::new(Float64Array::from_iter_values(
            (0..60).map(|i| 1.0 + i as f64),
        ));
        let batch = RecordBatch::try_new(schema.clone(), vec![f(0.1), d, f(0.3), f(0.2)]).unwrap();
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(25))
            .set_compression(parquet::basic::Compression::SNAPPY)
            .build();
        let mut pq = Vec::new();
        let mut w =
            parquet::arrow::ArrowWriter::try_new(&mut pq, schema.clone(), Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let mut ipc = Vec::new();
        let mut w = arrow_ipc::writer::FileWriter::try_new(&mut ipc, &schema).unwrap();
        for s in [0, 25, 50] {
            w.write(&batch.slice(s, 25.min(60 - s))).unwrap();
        }
        w.finish().unwrap();
        drop(w);
        (pq, ipc)
    })
}

#[test]
fn intact_files_give_every_row() {
    let (pq, ipc) = files();
    for f64_mode in [false, true] {
        assert_eq!(read_all(pq, Format::Parquet, f64_mode, true), Ok(60));
        assert_eq!(read_all(ipc, Format::Arrow, f64_mode, true), Ok(60));
    }
    // Compressed IPC (pyarrow's Feather default is LZ4) passes the buffer checks.
    let (bytes, batch) = {
        let f = |k: f32| -> ArrayRef {
            Arc::new(Float32Array::from_iter_values(
                (0..60).map(|i| 0.5 + k * i as f32),
            ))
        };
        let schema = Arc::new(Schema::new(
            ["mu1", "sigma1", "mu2", "sigma2"]
                .map(|n| Field::new(n, DataType::Float32, false))
                .to_vec(),
        ));
        (
            Vec::new(),
            RecordBatch::try_new(schema, vec![f(0.1), f(0.2), f(0.3), f(0.4)]).unwrap(),
        )
    };
    for c in [
        arrow_ipc::CompressionType::LZ4_FRAME,
        arrow_ipc::CompressionType::ZSTD,
    ] {
        let mut bytes = bytes.clone();
        let options = arrow_ipc::writer::IpcWriteOptions::default()
            .try_with_compression(Some(c))
            .unwrap();
        let mut w = arrow_ipc::writer::FileWriter::try_new_with_options(
            &mut bytes,
            &batch.schema(),
            options,
        )
        .unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
        drop(w);
        assert_eq!(
            read_all(&bytes, Format::Arrow, false, true),
            Ok(60),
            "{c:?}"
        );
    }
}

/// Found by the parquet_reader fuzz target: an LZ4-compressed Arrow IPC file
/// whose buffer declares a huge uncompressed size, which arrow-ipc reserves
/// before decompressing (an allocation failure aborts the process).
#[test]
fn regression_ipc_compressed_buffer_with_a_huge_declared_size() {
    let bytes = include_bytes!("data/fuzz_ipc_lz4_huge_length.arrow");
    for f64_mode in [false, true] {
        let e = read_all(bytes, Format::Arrow, f64_mode, true).unwrap_err();
        assert!(e.contains("declares") && e.contains("uncompressed"), "{e}");
    }
}

/// Found by the parquet_reader fuzz target: a Parquet dictionary page that
/// claims 1.9e9 float values in a few bytes, for which the decoder would
/// allocate and zero 7.6 GB.
#[test]
fn regression_parquet_dictionary_page_claiming_more_values_than_bytes() {
    let bytes = include_bytes!("data/fuzz_parquet_dictionary_count.parquet");
    for f64_mode in [false, true] {
        for reject in [false, true] {
            let e = read_all(bytes, Format::Parquet, f64_mode, reject).unwrap_err();
            assert!(e.contains("dictionary page claims"), "{e}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn damaged_files_never_panic(
        arrow: bool,
        cut in prop::option::of(0usize..4000),
        edits in prop::collection::vec((0usize..4000, any::<u8>()), 0..6),
        f64_mode: bool,
        reject: bool,
    ) {
        let (pq, ipc) = files();
        let mut bytes = if arrow { ipc.clone() } else { pq.clone() };
        for (at, b) in edits {
            let n = bytes.len();
            bytes[at % n] = b;
        }
        if let Some(c) = cut {
            bytes.truncate(c % (bytes.len() + 1));
        }
        let format = if arrow { Format::Arrow } else { Format::Parquet };
        // Rows or an error with a message (read_all asserts both); no panic.
        let _ = read_all(&bytes, format, f64_mode, reject);
    }
}
