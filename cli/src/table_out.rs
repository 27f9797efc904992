//! Parquet (zstd, one row group per chunk) and Arrow IPC output of the
//! measures beside the kept columns, and kept Arrow columns as CSV text
//! (the `parquet` feature).

use super::columns::{push_csv_field, Kept, KeptColumn};
use super::io::{Format, Shortest, Sink, Values, CHUNK_ROWS};
use super::output::Target;
use super::CliError;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef, Float32Array, Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::sync::Arc;

/// The writer of a table format.
enum Writer {
    Parquet(Box<ArrowWriter<Target>>),
    Ipc(Box<arrow_ipc::writer::FileWriter<Target>>),
}

/// Parquet or Arrow IPC output.
pub struct TableSink {
    writer: Writer,
    schema: SchemaRef,
    label: String,
    rows: u64,
}

/// Whether a kept column of this type can be written to CSV.
fn csv_writable(dt: &DataType) -> bool {
    use DataType as D;
    matches!(
        dt,
        D::Null
            | D::Boolean
            | D::Int8
            | D::Int16
            | D::Int32
            | D::Int64
            | D::UInt8
            | D::UInt16
            | D::UInt32
            | D::UInt64
            | D::Float32
            | D::Float64
            | D::Utf8
            | D::LargeUtf8
            | D::Utf8View
    )
}

/// Check that the kept columns can be written to CSV (strings, integers,
/// floats, booleans), before any row is read.
pub fn check_csv_kept(kept: &[KeptColumn]) -> Result<(), CliError> {
    for k in kept {
        if let Some(f) = &k.field {
            if !csv_writable(f.data_type()) {
                return Err(CliError::input(format!(
                    "--keep: column {:?} has type {}, which CSV output does not write \
                     (strings, integers, floats and booleans only); write Parquet or Arrow output",
                    k.name,
                    f.data_type()
                )));
            }
        }
    }
    Ok(())
}

/// The output for `target` in `format`: the kept columns first, then the
/// measures (`names`) as float32, or float64 with `f64_out`.
pub fn create_sink(
    target: Target,
    format: Format,
    names: &[&str],
    f64_out: bool,
    kept: &[KeptColumn],
) -> Result<Box<dyn Sink>, CliError> {
    let label = target.label().to_string();
    let mut fields: Vec<Arc<Field>> = kept
        .iter()
        .map(|k| {
            k.field
                .clone()
                .unwrap_or_else(|| Arc::new(Field::new(&k.name, DataType::Utf8, false)))
        })
        .collect();
    let float = if f64_out {
        DataType::Float64
    } else {
        DataType::Float32
    };
    fields.extend(
        names
            .iter()
            .map(|n| Arc::new(Field::new(*n, float.clone(), false))),
    );
    let schema = Arc::new(Schema::new(fields));
    let err = |e: String| CliError::input(format!("cannot write {label}: {e}"));
    let writer = match format {
        Format::Parquet => {
            let props = WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::default()))
                .set_max_row_group_row_count(Some(CHUNK_ROWS))
                .build();
            Writer::Parquet(Box::new(
                ArrowWriter::try_new(target, schema.clone(), Some(props))
                    .map_err(|e| err(e.to_string()))?,
            ))
        }
        _ => Writer::Ipc(Box::new(
            arrow_ipc::writer::FileWriter::try_new(target, &schema)
                .map_err(|e| err(e.to_string()))?,
        )),
    };
    Ok(Box::new(TableSink {
        writer,
        schema,
        label,
        rows: 0,
    }))
}

/// The `j`-th output column of rows of `k` values: the values at `c` of each row.
fn gather<T: Copy>(flat: &[T], k: usize, c: usize) -> Vec<T> {
    flat.iter().skip(c).step_by(k.max(1)).copied().collect()
}

impl TableSink {
    fn err(&self, e: impl std::fmt::Display) -> CliError {
        CliError::input(format!("cannot write {}: {e}", self.label))
    }

    /// The kept columns of a chunk as Arrow arrays.
    fn kept_arrays(&self, kept: Option<&Kept>, rows: usize) -> Result<Vec<ArrayRef>, CliError> {
        match kept {
            None => Ok(Vec::new()),
            Some(Kept::Arrow(cols)) => Ok(cols.clone()),
            Some(Kept::Text(cols)) => cols
                .iter()
                .enumerate()
                .map(|(j, t)| {
                    let mut strings = Vec::with_capacity(rows);
                    for i in 0..t.len() {
                        let s = std::str::from_utf8(t.get(i)).map_err(|_| {
                            let name = self.schema.fields().get(j).map_or("?", |f| f.name());
                            CliError::input(format!(
                                "data row {}, kept column {name:?}: not UTF-8 text, which \
                                 Parquet and Arrow strings must be",
                                self.rows + i as u64 + 1
                            ))
                        })?;
                        strings.push(s);
                    }
                    Ok(Arc::new(StringArray::from(strings)) as ArrayRef)
                })
                .collect(),
        }
    }
}

impl Sink for TableSink {
    fn write(
        &mut self,
        values: &Values,
        k: usize,
        order: &[usize],
        kept: Option<&Kept>,
        group_end: bool,
    ) -> Result<(), CliError> {
        let rows = match values {
            Values::F32(v) => v.len() / k.max(1),
            Values::F64(v) => v.len() / k.max(1),
        };
        let mut columns = self.kept_arrays(kept, rows)?;
        for &c in order {
            columns.push(match values {
                Values::F32(v) => Arc::new(Float32Array::from(gather(v, k, c))) as ArrayRef,
                Values::F64(v) => Arc::new(Float64Array::from(gather(v, k, c))) as ArrayRef,
            });
        }
        let batch = RecordBatch::try_new(self.schema.clone(), columns).map_err(|e| self.err(e))?;
        let written = match &mut self.writer {
            Writer::Parquet(w) => w
                .write(&batch)
                .and_then(|()| if group_end { w.flush() } else { Ok(()) })
                .map_err(|e| e.to_string()),
            Writer::Ipc(w) => w.write(&batch).map_err(|e| e.to_string()),
        };
        written.map_err(|e| self.err(e))?;
        self.rows += rows as u64;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), CliError> {
        let label = self.label.clone();
        let err = |e: String| CliError::input(format!("cannot write {label}: {e}"));
        let target = match self.writer {
            Writer::Parquet(w) => w.into_inner().map_err(|e| err(e.to_string()))?,
            Writer::Ipc(w) => w.into_inner().map_err(|e| err(e.to_string()))?,
        };
        target.finish()
    }
}

/// A kept Arrow column's values as CSV fields (nulls empty).
pub struct TextCells<'a> {
    array: &'a dyn Array,
}

impl<'a> TextCells<'a> {
    /// The cells of `array` (of a type [`check_csv_kept`] accepts).
    pub fn new(array: &'a dyn Array) -> Result<TextCells<'a>, CliError> {
        if csv_writable(array.data_type()) {
            Ok(TextCells { array })
        } else {
            Err(CliError::input(format!(
                "a kept column of type {} cannot be written to CSV",
                array.data_type()
            )))
        }
    }

    /// Append row `i`'s field.
    pub fn push(&self, i: usize, buf: &mut Vec<u8>) {
        let a = self.array;
        if i >= a.len() || a.is_null(i) {
            return;
        }
        let mut ryu = ryu::Buffer::new();
        let int = |buf: &mut Vec<u8>, v: &dyn std::fmt::Display| {
            use std::io::Write;
            let _ = write!(buf, "{v}");
        };
        match a.data_type() {
            DataType::Boolean => int(buf, &a.as_boolean().value(i)),
            DataType::Int8 => int(buf, &a.as_primitive::<Int8Type>().value(i)),
            DataType::Int16 => int(buf, &a.as_primitive::<Int16Type>().value(i)),
            DataType::Int32 => int(buf, &a.as_primitive::<Int32Type>().value(i)),
            DataType::Int64 => int(buf, &a.as_primitive::<Int64Type>().value(i)),
            DataType::UInt8 => int(buf, &a.as_primitive::<UInt8Type>().value(i)),
            DataType::UInt16 => int(buf, &a.as_primitive::<UInt16Type>().value(i)),
            DataType::UInt32 => int(buf, &a.as_primitive::<UInt32Type>().value(i)),
            DataType::UInt64 => int(buf, &a.as_primitive::<UInt64Type>().value(i)),
            DataType::Float32 => a.as_primitive::<Float32Type>().value(i).push(buf, &mut ryu),
            DataType::Float64 => a.as_primitive::<Float64Type>().value(i).push(buf, &mut ryu),
            DataType::Utf8 => push_csv_field(buf, a.as_string::<i32>().value(i).as_bytes()),
            DataType::LargeUtf8 => push_csv_field(buf, a.as_string::<i64>().value(i).as_bytes()),
            DataType::Utf8View => push_csv_field(buf, a.as_string_view().value(i).as_bytes()),
            _ => {}
        }
    }
}
