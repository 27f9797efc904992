//! Parquet and Arrow IPC input (the `parquet` feature): record batches of a
//! table, row group by row group, turned into chunks of pairs and the kept
//! columns beside them. Output is in `table_out`.

use super::columns::{Kept, KeptColumn};
use super::io::{
    field_index, header_names, invalid_in_column, Format, Input, ReadOptions, Rows, Source,
    CHUNK_ROWS,
};
use super::CliError;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, SchemaRef};
use gaussdiv::{Field, GaussianPair, Param};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;
use parquet::file::reader::{ChunkReader, Length};
use std::fs::File;
use std::io::{Read, Seek};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

pub use super::table_out::{create_sink, TextCells};

/// Record batches with the index of the group (row group, IPC batch) each came from.
type Batches = Box<dyn Iterator<Item = Result<(RecordBatch, usize), CliError>> + Send>;

/// Run `f`, turning a panic of the decoder into an error: no malformed
/// file can take the tool down.
fn guarded<R>(
    label: &str,
    what: &str,
    f: impl FnOnce() -> Result<R, String>,
) -> Result<R, CliError> {
    super::signals::quiet_guarded_panics();
    super::signals::QUIET_PANICS.with(|q| q.set(true));
    let caught = catch_unwind(AssertUnwindSafe(f));
    super::signals::QUIET_PANICS.with(|q| q.set(false));
    match caught {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(CliError::input(format!("{label}: malformed {what}: {e}"))),
        Err(_) => Err(CliError::input(format!(
            "{label}: malformed {what}: the decoder failed on it"
        ))),
    }
}

/// A file shared by the row groups' readers.
#[derive(Clone)]
struct SharedFile(Arc<File>);

impl Length for SharedFile {
    fn len(&self) -> u64 {
        Length::len(self.0.as_ref())
    }
}

impl ChunkReader for SharedFile {
    type T = <File as ChunkReader>::T;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        self.0.as_ref().get_read(start)
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        self.0.as_ref().get_bytes(start, length)
    }
}

/// Open a Parquet or Arrow IPC file on disk, streamed group by group.
pub fn open_file(path: &Path, format: Format, options: &ReadOptions) -> Result<Input, CliError> {
    let label = path.display().to_string();
    let file = File::open(path)
        .map_err(|e| CliError::input(format!("cannot open {}: {e}", path.display())))?;
    let size = file
        .metadata()
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    let counter = super::io::ByteCounter::default();
    let source: Box<dyn Source> = match format {
        Format::Parquet => {
            let input = SharedFile(Arc::new(file));
            Box::new(parquet_source(
                input,
                label,
                options,
                Some(counter.clone()),
            )?)
        }
        _ => Box::new(ipc_source(
            Box::new(std::io::BufReader::with_capacity(1 << 20, file)),
            label,
            options,
        )?),
    };
    Ok(Input {
        source,
        bytes_read: counter,
        size,
    })
}

/// A Parquet or Arrow IPC source over bytes read from `reader` into memory.
pub fn source_from_bytes(
    mut reader: Box<dyn Read + Send>,
    label: String,
    format: Format,
    options: &ReadOptions,
) -> Result<Box<dyn Source>, CliError> {
    let mut data = Vec::new();
    reader
        .read_to_end(&mut data)
        .map_err(|e| CliError::input(format!("{label}: read error: {e}")))?;
    Ok(match format {
        Format::Parquet => Box::new(parquet_source(
            bytes::Bytes::from(data),
            label,
            options,
            None,
        )?),
        _ => Box::new(ipc_source(
            Box::new(std::io::Cursor::new(data)),
            label,
            options,
        )?),
    })
}

fn parquet_source<T: ChunkReader + Clone + 'static>(
    input: T,
    label: String,
    options: &ReadOptions,
    progress: Option<super::io::ByteCounter>,
) -> Result<TableSource, CliError> {
    if input.len() < 12 {
        return Err(CliError::input(format!(
            "{label}: not a Parquet file ({} bytes; truncated?)",
            input.len()
        )));
    }
    let meta = guarded(&label, "Parquet file", || {
        ArrowReaderMetadata::load(&input, Default::default()).map_err(|e| e.to_string())
    })?;
    check_parquet_ranges(meta.metadata(), input.len(), &label)?;
    let plan = Plan::new(meta.schema(), options, &label)?;
    let mask = ProjectionMask::roots(meta.parquet_schema(), plan.needed.iter().copied());
    let groups = meta.metadata().num_row_groups();
    // Compressed bytes per row group, for the progress display.
    let sizes: Vec<u64> = meta
        .metadata()
        .row_groups()
        .iter()
        .map(|g| u64::try_from(g.compressed_size()).unwrap_or(0))
        .collect();
    let roots = plan.needed.clone();
    let batches = ParquetBatches {
        input,
        meta,
        mask,
        roots,
        group: 0,
        groups,
        current: None,
        label: label.clone(),
        progress,
        sizes,
    };
    TableSource::new(plan, Box::new(batches), label, options, "row group", true)
}

/// Every column chunk must lie inside the file: the decoder allocates what
/// the metadata claims before it reads, so a damaged length must never reach it.
fn check_parquet_ranges(
    meta: &parquet::file::metadata::ParquetMetaData,
    file_len: u64,
    label: &str,
) -> Result<(), CliError> {
    for (g, rg) in meta.row_groups().iter().enumerate() {
        for (c, col) in rg.columns().iter().enumerate() {
            let start = col
                .dictionary_page_offset()
                .unwrap_or(col.data_page_offset());
            let len = col.compressed_size();
            let inside = u64::try_from(start)
                .ok()
                .zip(u64::try_from(len).ok())
                .and_then(|(s, l)| s.checked_add(l))
                .is_some_and(|end| end <= file_len);
            if !inside {
                return Err(CliError::input(format!(
                    "{label}: malformed Parquet file: row group {g}, column chunk {c} claims \
                     bytes {start}..+{len}, beyond the file's {file_len} bytes (truncated?)"
                )));
            }
        }
    }
    Ok(())
}

/// Every dictionary page of the columns read in row group `g` must hold
/// the values it claims: the decoder sizes the dictionary from the claimed
/// count before decoding (a few bytes could ask for gigabytes). Reads the
/// page headers and the dictionary pages only; data pages are skipped.
fn check_dictionary_pages<T: ChunkReader + Clone + 'static>(
    input: &T,
    meta: &ArrowReaderMetadata,
    g: usize,
    roots: &[usize],
) -> Result<(), String> {
    use parquet::basic::Type as P;
    use parquet::column::page::{Page, PageReader};
    use parquet::file::serialized_reader::SerializedPageReader;
    let schema = meta.parquet_schema();
    let Some(rg) = meta.metadata().row_groups().get(g) else {
        return Ok(());
    };
    let shared = Arc::new(input.clone());
    for (c, col) in rg.columns().iter().enumerate() {
        if c >= schema.num_columns() || !roots.contains(&schema.get_column_root_idx(c)) {
            continue;
        }
        let descr = col.column_descr();
        // The fewest bytes a value of this physical type takes in a plain dictionary, in eighths.
        let eighths: u64 = match descr.physical_type() {
            P::BOOLEAN => 1,
            P::INT32 | P::FLOAT | P::BYTE_ARRAY => 32,
            P::INT64 | P::DOUBLE => 64,
            P::INT96 => 96,
            P::FIXED_LEN_BYTE_ARRAY => 8 * u64::try_from(descr.type_length()).unwrap_or(0).max(1),
        };
        let rows = usize::try_from(rg.num_rows()).unwrap_or(0);
        let mut pages = SerializedPageReader::new(shared.clone(), col, rows, None)
            .map_err(|e| format!("row group {g}, column chunk {c}: {e}"))?;
        let err =
            |e: parquet::errors::ParquetError| format!("row group {g}, column chunk {c}: {e}");
        while let Some(page) = pages.peek_next_page().map_err(err)? {
            if !page.is_dict {
                pages.skip_next_page().map_err(err)?;
                continue;
            }
            if let Some(Page::DictionaryPage {
                buf, num_values, ..
            }) = pages.get_next_page().map_err(err)?
            {
                if u64::from(num_values) * eighths > 8 * buf.len() as u64 {
                    return Err(format!(
                        "row group {g}, column chunk {c}: a dictionary page claims \
                         {num_values} values in {} bytes",
                        buf.len()
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The batches of a Parquet file, row group by row group (a batch never
/// spans two row groups, so one output row group follows each input one).
struct ParquetBatches<T: ChunkReader + Clone + 'static> {
    input: T,
    meta: ArrowReaderMetadata,
    mask: ProjectionMask,
    /// The schema's root columns read (the projection).
    roots: Vec<usize>,
    group: usize,
    groups: usize,
    current: Option<parquet::arrow::arrow_reader::ParquetRecordBatchReader>,
    label: String,
    progress: Option<super::io::ByteCounter>,
    sizes: Vec<u64>,
}

impl<T: ChunkReader + Clone + 'static> Iterator for ParquetBatches<T> {
    type Item = Result<(RecordBatch, usize), CliError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(reader) = self.current.as_mut() {
                let g = self.group.saturating_sub(1);
                match guarded(&self.label, "Parquet file", || {
                    reader
                        .next()
                        .transpose()
                        .map_err(|e| format!("row group {g}: {e}"))
                }) {
                    Ok(Some(b)) => return Some(Ok((b, g))),
                    Ok(None) => self.current = None,
                    Err(e) => {
                        self.group = self.groups;
                        self.current = None;
                        return Some(Err(e));
                    }
                }
            }
            if self.group >= self.groups {
                return None;
            }
            let g = self.group;
            self.group += 1;
            if let (Some(c), Some(s)) = (&self.progress, self.sizes.get(g)) {
                c.fetch_add(*s, std::sync::atomic::Ordering::Relaxed);
            }
            let checked = guarded(&self.label, "Parquet file", || {
                check_dictionary_pages(&self.input, &self.meta, g, &self.roots)
            });
            if let Err(e) = checked {
                self.group = self.groups;
                return Some(Err(e));
            }
            let built = guarded(&self.label, "Parquet file", || {
                ParquetRecordBatchReaderBuilder::new_with_metadata(
                    self.input.clone(),
                    self.meta.clone(),
                )
                .with_projection(self.mask.clone())
                .with_row_groups(vec![g])
                .with_batch_size(CHUNK_ROWS)
                .build()
                .map_err(|e| format!("row group {g}: {e}"))
            });
            match built {
                Ok(r) => self.current = Some(r),
                Err(e) => {
                    self.group = self.groups;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// Something to read Arrow IPC from.
trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

fn ipc_source(
    mut reader: Box<dyn ReadSeek>,
    label: String,
    options: &ReadOptions,
) -> Result<TableSource, CliError> {
    let mut magic = [0u8; 6];
    let n = read_up_to(&mut reader, &mut magic)
        .map_err(|e| CliError::input(format!("{label}: read error: {e}")))?;
    reader
        .rewind()
        .map_err(|e| CliError::input(format!("{label}: cannot seek: {e}")))?;
    let head = magic.get(..n).unwrap_or(&[]);
    if head.starts_with(b"FEA1") {
        return Err(CliError::input(format!(
            "{label}: Feather version 1 is not supported; write Feather version 2 (Arrow IPC), \
             e.g. pyarrow.feather.write_feather(table, path, version=2)"
        )));
    }
    let what = "Arrow IPC file";
    if head != b"ARROW1" {
        return Err(CliError::input(format!(
            "{label}: not an Arrow IPC file (no ARROW1 magic; the IPC stream format is not \
             read: write the file format, e.g. pyarrow.feather.write_feather)"
        )));
    }
    check_ipc_blocks(&mut reader, &label)?;
    type Inner = Box<dyn Iterator<Item = Result<RecordBatch, String>> + Send>;
    let (schema, inner): (SchemaRef, Inner) = {
        let r = guarded(&label, what, || {
            arrow_ipc::reader::FileReader::try_new(reader, None).map_err(|e| e.to_string())
        })?;
        (
            r.schema(),
            Box::new(r.map(|b| b.map_err(|e| e.to_string()))),
        )
    };
    let plan = Plan::new(&schema, options, &label)?;
    let batches = IpcBatches {
        inner,
        index: 0,
        label: label.clone(),
        done: false,
    };
    TableSource::new(
        plan,
        Box::new(batches),
        label,
        options,
        "record batch",
        false,
    )
}

/// Every block (record batch, dictionary) the footer of an Arrow IPC file
/// names must lie inside the file: the reader allocates a block's claimed
/// length before reading it, so a damaged length must never reach it.
fn check_ipc_blocks(reader: &mut Box<dyn ReadSeek>, label: &str) -> Result<(), CliError> {
    use std::io::SeekFrom;
    let bad = |why: String| CliError::input(format!("{label}: malformed Arrow IPC file: {why}"));
    let io = |e: std::io::Error| CliError::input(format!("{label}: read error: {e}"));
    let len = reader.seek(SeekFrom::End(0)).map_err(io)?;
    if len < 18 {
        return Err(bad(format!("{len} bytes (truncated?)")));
    }
    reader.seek(SeekFrom::Start(len - 10)).map_err(io)?;
    let mut tail = [0u8; 10];
    reader.read_exact(&mut tail).map_err(io)?;
    let (footer_len, magic) = tail.split_at(4);
    if magic != b"ARROW1" {
        return Err(bad("no ARROW1 magic at the end (truncated?)".into()));
    }
    let footer_len = i32::from_le_bytes(footer_len.try_into().unwrap_or([0; 4]));
    let footer_len = u64::try_from(footer_len)
        .ok()
        .filter(|&f| f + 10 <= len)
        .ok_or_else(|| bad(format!("footer length {footer_len} does not fit the file")))?;
    reader
        .seek(SeekFrom::Start(len - 10 - footer_len))
        .map_err(io)?;
    let mut footer = vec![0u8; footer_len as usize];
    reader.read_exact(&mut footer).map_err(io)?;
    let footer = arrow_ipc::root_as_footer(&footer).map_err(|e| bad(format!("footer: {e}")))?;
    let blocks = footer
        .recordBatches()
        .into_iter()
        .flatten()
        .chain(footer.dictionaries().into_iter().flatten());
    let blocks: Vec<(u64, u64, u64)> = blocks
        .map(|b| {
            let o = u64::try_from(b.offset()).ok();
            let meta = u64::try_from(b.metaDataLength()).ok();
            let body = u64::try_from(b.bodyLength()).ok();
            match (o, meta, body) {
                (Some(o), Some(m), Some(l))
                    if o.checked_add(m)
                        .and_then(|e| e.checked_add(l))
                        .is_some_and(|e| e <= len) =>
                {
                    Ok((o, m, l))
                }
                _ => Err(bad(format!(
                    "a block at offset {} of {} + {} bytes lies beyond the file's {len} bytes",
                    b.offset(),
                    b.metaDataLength(),
                    b.bodyLength()
                ))),
            }
        })
        .collect::<Result<_, _>>()?;
    for (offset, meta, body) in blocks {
        check_ipc_buffers(reader, offset, meta, body, &bad)?;
    }
    reader.rewind().map_err(io)?;
    Ok(())
}

/// The largest uncompressed size a compressed IPC buffer may declare: the
/// reader reserves it before decompressing, so a damaged prefix must not
/// ask for more than a machine can promise.
const MAX_IPC_BUFFER: u64 = 1 << 30;

/// The buffers of one block (a record or dictionary batch) must lie inside
/// its body, and compressed ones declare at most [`MAX_IPC_BUFFER`] bytes.
fn check_ipc_buffers(
    reader: &mut Box<dyn ReadSeek>,
    offset: u64,
    meta_len: u64,
    body_len: u64,
    bad: &dyn Fn(String) -> CliError,
) -> Result<(), CliError> {
    use std::io::SeekFrom;
    let io = |e: std::io::Error| bad(format!("read error: {e}"));
    reader.seek(SeekFrom::Start(offset)).map_err(io)?;
    let mut meta = vec![0u8; usize::try_from(meta_len).map_err(|_| bad("metadata size".into()))?];
    reader.read_exact(&mut meta).map_err(io)?;
    // An encapsulated message: [0xFFFFFFFF] length, flatbuffer, padding.
    let skip = if meta.starts_with(&[0xff; 4]) { 8 } else { 4 };
    let message = arrow_ipc::root_as_message(meta.get(skip..).unwrap_or(&[]))
        .map_err(|e| bad(format!("message at offset {offset}: {e}")))?;
    let batch = message
        .header_as_record_batch()
        .or_else(|| message.header_as_dictionary_batch().and_then(|d| d.data()));
    let Some(batch) = batch else {
        return Ok(());
    };
    let compressed = batch.compression().is_some();
    let body_start = offset + meta_len;
    for buf in batch.buffers().into_iter().flatten() {
        let (o, l) = (buf.offset(), buf.length());
        let inside = u64::try_from(o)
            .ok()
            .zip(u64::try_from(l).ok())
            .and_then(|(o, l)| o.checked_add(l))
            .is_some_and(|e| e <= body_len);
        if !inside {
            return Err(bad(format!(
                "a buffer of {l} bytes at {o} lies beyond its batch's body of {body_len} bytes"
            )));
        }
        if compressed && l >= 8 {
            let mut prefix = [0u8; 8];
            reader
                .seek(SeekFrom::Start(body_start + o.unsigned_abs()))
                .map_err(io)?;
            reader.read_exact(&mut prefix).map_err(io)?;
            let declared = i64::from_le_bytes(prefix);
            if u64::try_from(declared).is_ok_and(|d| d > MAX_IPC_BUFFER) {
                return Err(bad(format!(
                    "a compressed buffer declares {declared} bytes uncompressed (more than \
                     {MAX_IPC_BUFFER} per buffer are refused: write smaller record batches)"
                )));
            }
        }
    }
    Ok(())
}

/// The record batches of an Arrow IPC file, guarded.
struct IpcBatches {
    inner: Box<dyn Iterator<Item = Result<RecordBatch, String>> + Send>,
    index: usize,
    label: String,
    done: bool,
}

impl Iterator for IpcBatches {
    type Item = Result<(RecordBatch, usize), CliError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let i = self.index;
        let inner = &mut self.inner;
        match guarded(&self.label, "Arrow IPC file", || {
            inner
                .next()
                .transpose()
                .map_err(|e| format!("record batch {i}: {e}"))
        }) {
            Ok(Some(b)) => {
                self.index += 1;
                Some(Ok((b, i)))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Which columns of a table are read, and where they are in its batches.
struct Plan {
    /// The four inputs' indices in the schema.
    cols: [usize; 4],
    /// The kept columns' indices in the schema, in output order.
    kept: Vec<usize>,
    /// Every column read, ascending (the projection).
    needed: Vec<usize>,
    /// The kept columns' names and fields.
    kept_columns: Vec<KeptColumn>,
    /// How messages name the four inputs.
    described: [String; 4],
}

impl Plan {
    fn new(schema: &SchemaRef, options: &ReadOptions, label: &str) -> Result<Plan, CliError> {
        let param = options.param;
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
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
                "{label}: the table lacks column(s) {} (found: {})",
                missing.join(", "),
                names.join(",")
            )));
        }
        let described = Field::ALL.map(|f| options.columns.describe(f, param));
        for (&c, d) in cols.iter().zip(described.iter()) {
            let dt = schema.fields().get(c).map(|f| f.data_type().clone());
            if !matches!(dt, Some(DataType::Float32 | DataType::Float64)) {
                return Err(CliError::input(format!(
                    "{label}: column {d} has type {}: expected float32 or float64",
                    dt.map_or("?".to_string(), |t| t.to_string())
                )));
            }
        }
        let kept = options.keep.resolve(&names, &cols, label)?;
        let kept_columns = kept
            .iter()
            .filter_map(|&i| schema.fields().get(i))
            .map(|f| KeptColumn {
                name: f.name().clone(),
                field: Some(f.clone()),
            })
            .collect();
        let mut needed: Vec<usize> = cols.iter().chain(kept.iter()).copied().collect();
        needed.sort_unstable();
        needed.dedup();
        Ok(Plan {
            cols,
            kept,
            needed,
            kept_columns,
            described,
        })
    }
}

/// Reads pairs (and kept columns) from the record batches of a table.
pub struct TableSource {
    batches: Batches,
    label: String,
    reject_invalid: bool,
    param: Param,
    unit: &'static str,
    /// The four inputs' and the kept columns' positions in a batch.
    pos: [usize; 4],
    kept_pos: Vec<usize>,
    kept_columns: Vec<KeptColumn>,
    described: [String; 4],
    /// The batch being read, its group and the next row in it.
    pending: Option<(RecordBatch, usize, usize)>,
    /// Rows delivered before the pending batch's next row.
    rows: u64,
    kept: Option<Kept>,
    group_end: bool,
}

impl TableSource {
    fn new(
        plan: Plan,
        batches: Batches,
        label: String,
        options: &ReadOptions,
        unit: &'static str,
        projected: bool,
    ) -> Result<TableSource, CliError> {
        // With a projection, batches hold the needed columns in ascending order.
        let at = |i: usize| {
            if projected {
                plan.needed
                    .iter()
                    .position(|&n| n == i)
                    .unwrap_or(usize::MAX)
            } else {
                i
            }
        };
        Ok(TableSource {
            batches,
            label,
            reject_invalid: options.reject_invalid,
            param: options.param,
            unit,
            pos: plan.cols.map(at),
            kept_pos: plan.kept.iter().map(|&i| at(i)).collect(),
            kept_columns: plan.kept_columns,
            described: plan.described,
            pending: None,
            rows: 0,
            kept: None,
            group_end: false,
        })
    }

    fn column<'b>(&self, batch: &'b RecordBatch, p: usize) -> Result<&'b ArrayRef, CliError> {
        batch.columns().get(p).ok_or_else(|| {
            CliError::input(format!(
                "{}: a {} lacks columns its schema names",
                self.label, self.unit
            ))
        })
    }

    /// Fill `out` with the rows `start..start + n` of `batch`.
    fn convert<T: Value>(
        &self,
        batch: &RecordBatch,
        group: usize,
        start: usize,
        n: usize,
        out: &mut Vec<GaussianPair<T>>,
    ) -> Result<(), CliError> {
        out.clear();
        out.resize(n, GaussianPair::default());
        let first = self.rows;
        for (j, (&p, field)) in self.pos.iter().zip(Field::ALL.iter()).enumerate() {
            let array = self.column(batch, p)?.slice(start, n);
            if self.reject_invalid && array.null_count() > 0 {
                let i = (0..n).find(|&i| array.is_null(i)).unwrap_or(0);
                return Err(CliError::input(format!(
                    "{}: {}, column {}: missing value (null) \
                     (use --on-invalid nan to write NaN for such rows)",
                    self.label,
                    self.place(first + i as u64, group),
                    self.describe(*field)
                )));
            }
            let flat: &mut [T] = bytemuck::cast_slice_mut(out.as_mut_slice());
            let slots = flat.iter_mut().skip(j).step_by(4);
            match array.data_type() {
                DataType::Float32 => fill(slots, array.as_primitive::<Float32Type>(), T::from_f32),
                DataType::Float64 => fill(slots, array.as_primitive::<Float64Type>(), T::from_f64),
                other => {
                    return Err(CliError::input(format!(
                        "{}: column {} has type {other} in {} {group}: expected float32 or float64",
                        self.label,
                        self.describe(*field),
                        self.unit
                    )))
                }
            }
        }
        if self.reject_invalid {
            for (i, pair) in out.iter().enumerate() {
                if let Some((field, reason)) = pair.invalid_field(self.param) {
                    let p = self.pos.get(field_index(field)).copied().unwrap_or(0);
                    let text = original(self.column(batch, p)?.as_ref(), start + i, T::IS_F32);
                    return Err(invalid_in_column(
                        &self.label,
                        &self.place(first + i as u64, group),
                        self.describe(field),
                        &text,
                        reason,
                    ));
                }
            }
        }
        Ok(())
    }

    fn describe(&self, field: Field) -> &str {
        self.described
            .get(field_index(field))
            .map_or("?", String::as_str)
    }

    fn place(&self, row: u64, group: usize) -> String {
        format!("row {row} (0-based; {} {group})", self.unit)
    }
}

/// An element type of the pipeline, converted from the table's floats.
trait Value: Copy + Default + bytemuck::Pod + gaussdiv::Float {
    const IS_F32: bool;
    fn from_f32(v: f32) -> Self;
    fn from_f64(v: f64) -> Self;
    fn nan() -> Self;
}

impl Value for f32 {
    const IS_F32: bool = true;
    fn from_f32(v: f32) -> f32 {
        v
    }
    fn from_f64(v: f64) -> f32 {
        // Rounded; a value out of f32 range becomes ±inf and is reported.
        v as f32
    }
    fn nan() -> f32 {
        f32::NAN
    }
}

impl Value for f64 {
    const IS_F32: bool = false;
    fn from_f32(v: f32) -> f64 {
        f64::from(v)
    }
    fn from_f64(v: f64) -> f64 {
        v
    }
    fn nan() -> f64 {
        f64::NAN
    }
}

/// Write a column's values into every fourth slot; nulls become NaN (an invalid row).
fn fill<'a, T: Value, P: arrow_array::ArrowPrimitiveType>(
    slots: impl Iterator<Item = &'a mut T>,
    array: &arrow_array::PrimitiveArray<P>,
    conv: impl Fn(P::Native) -> T,
) {
    if array.null_count() == 0 {
        for (s, &v) in slots.zip(array.values().iter()) {
            *s = conv(v);
        }
    } else {
        for (s, v) in slots.zip(array.iter()) {
            *s = v.map_or_else(T::nan, &conv);
        }
    }
}

/// The text of the value at row `i` of a float column for a message (with
/// its f32 rounding when the pipeline is f32 and the column f64).
fn original(array: &dyn Array, i: usize, to_f32: bool) -> String {
    match array.data_type() {
        DataType::Float32 => array
            .as_primitive_opt::<Float32Type>()
            .and_then(|a| (i < a.len()).then(|| a.value(i)))
            .map_or_else(String::new, |v| format!("{v:e}")),
        DataType::Float64 => array
            .as_primitive_opt::<Float64Type>()
            .and_then(|a| (i < a.len()).then(|| a.value(i)))
            .map_or_else(String::new, |v| {
                if to_f32 {
                    format!("{v:e} (as f32: {:e})", v as f32)
                } else {
                    format!("{v:e}")
                }
            }),
        _ => String::new(),
    }
}

impl Source for TableSource {
    fn read(&mut self, max: usize, out: &mut Rows) -> Result<usize, CliError> {
        self.kept = None;
        self.group_end = false;
        let (batch, group, start) = loop {
            match self.pending.take() {
                Some((b, g, s)) if s < b.num_rows() => break (b, g, s),
                _ => match self.batches.next() {
                    None => {
                        match out {
                            Rows::F32(v) => v.clear(),
                            Rows::F64(v) => v.clear(),
                        }
                        return Ok(0);
                    }
                    Some(Err(e)) => return Err(e),
                    Some(Ok((b, g))) => self.pending = Some((b, g, 0)),
                },
            }
        };
        let n = (batch.num_rows() - start).min(max);
        match out {
            Rows::F32(v) => self.convert(&batch, group, start, n, v)?,
            Rows::F64(v) => self.convert(&batch, group, start, n, v)?,
        }
        if !self.kept_pos.is_empty() {
            let cols = self
                .kept_pos
                .iter()
                .map(|&p| self.column(&batch, p).map(|a| a.slice(start, n)))
                .collect::<Result<Vec<_>, _>>()?;
            self.kept = Some(Kept::Arrow(cols));
        }
        self.rows += n as u64;
        self.group_end = start + n == batch.num_rows();
        if !self.group_end {
            self.pending = Some((batch, group, start + n));
        }
        Ok(n)
    }

    fn take_kept(&mut self) -> Option<Kept> {
        self.kept.take()
    }

    fn group_end(&self) -> bool {
        self.group_end
    }

    fn kept_columns(&self) -> Vec<KeptColumn> {
        self.kept_columns.clone()
    }
}

/// Read into `buf` until it is full or the input ends; the bytes read.
fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while let Some(rest) = buf.get_mut(got..).filter(|r| !r.is_empty()) {
        match r.read(rest) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}
