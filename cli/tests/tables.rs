//! The tool with Parquet and Arrow IPC (the `parquet` feature): every
//! combination of input and output formats, `--columns`, `--keep`, nulls
//! and NaN under both policies, malformed files, and bounded memory.
#![cfg(feature = "parquet")]

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int64Type};
use arrow_array::{ArrayRef, Float32Array, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use gaussdiv::{Backend, Batch, Evaluator, GaussianPair, Metric, Metrics, Request};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gaussdiv"));
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        c.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run gaussdiv")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("gaussdiv-tables-{tag}-"))
        .tempdir()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every file in `d` (to check that a failure leaves nothing behind).
fn entries(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Deterministic valid pairs, varied in scale.
fn pairs(n: usize) -> Vec<GaussianPair> {
    (0..n)
        .map(|i| {
            let x = i as f32;
            GaussianPair::new(
                (x * 0.37).sin() * 3.0,
                0.1 + (x * 0.11).cos().abs() * 2.0,
                (x * 0.23).cos() * 2.0,
                0.2 + (x * 0.07).sin().abs() * 3.0,
            )
        })
        .collect()
}

/// cross_entropy and kl of `p` on the CPU, per row.
fn expected(p: &[GaussianPair]) -> Vec<[f32; 2]> {
    let ev = Evaluator::new(Backend::Cpu).unwrap();
    let set = Metrics::new(&[Metric::CrossEntropy, Metric::Kl]).unwrap();
    let mut out = vec![0f32; p.len() * 2];
    ev.evaluate(Batch::Pairs(p), &Request::measures(set), &mut out)
        .unwrap();
    out.chunks_exact(2).map(|c| [c[0], c[1]]).collect()
}

/// A table of ids and the four inputs under the given names, f32 or f64 columns.
fn table(p: &[GaussianPair], names: [&str; 4], f64_cols: bool) -> RecordBatch {
    let col = |f: fn(&GaussianPair) -> f32| -> ArrayRef {
        if f64_cols {
            Arc::new(Float64Array::from_iter_values(
                p.iter().map(|q| f64::from(f(q))),
            ))
        } else {
            Arc::new(Float32Array::from_iter_values(p.iter().map(f)))
        }
    };
    let ty = if f64_cols {
        DataType::Float64
    } else {
        DataType::Float32
    };
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new(names[0], ty.clone(), true),
        Field::new(names[1], ty.clone(), true),
        Field::new("label", DataType::Utf8, false),
        Field::new(names[2], ty.clone(), true),
        Field::new(names[3], ty, true),
    ]);
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(
        (0..p.len() as i64).map(|i| 1000 - 3 * i),
    ));
    let labels: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..p.len()).map(|i| format!("k{i},\"x\"")),
    ));
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            ids,
            col(|q| q.mu1),
            col(|q| q.sigma1),
            labels,
            col(|q| q.mu2),
            col(|q| q.sigma2),
        ],
    )
    .unwrap()
}

fn write_parquet(path: &Path, batch: &RecordBatch, row_group: usize) {
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(row_group))
        .build();
    let f = std::fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(f, batch.schema(), Some(props)).unwrap();
    for start in (0..batch.num_rows()).step_by(row_group) {
        w.write(&batch.slice(start, row_group.min(batch.num_rows() - start)))
            .unwrap();
        w.flush().unwrap();
    }
    w.close().unwrap();
}

fn write_arrow(path: &Path, batch: &RecordBatch, per_batch: usize, stream: bool) {
    let f = std::fs::File::create(path).unwrap();
    let parts = (0..batch.num_rows())
        .step_by(per_batch)
        .map(|s| batch.slice(s, per_batch.min(batch.num_rows() - s)));
    if stream {
        let mut w = arrow_ipc::writer::StreamWriter::try_new(f, &batch.schema()).unwrap();
        parts.for_each(|b| w.write(&b).unwrap());
        w.finish().unwrap();
    } else {
        let mut w = arrow_ipc::writer::FileWriter::try_new(f, &batch.schema()).unwrap();
        parts.for_each(|b| w.write(&b).unwrap());
        w.finish().unwrap();
    }
}

fn write_csv(path: &Path, p: &[GaussianPair]) {
    let mut t = String::from("id,mu1,sigma1,label,mu2,sigma2\n");
    for (i, q) in p.iter().enumerate() {
        t.push_str(&format!(
            "{},{:?},{:?},\"k{i},\"\"x\"\"\",{:?},{:?}\n",
            1000 - 3 * i as i64,
            q.mu1,
            q.sigma1,
            q.mu2,
            q.sigma2
        ));
    }
    std::fs::write(path, t).unwrap();
}

fn write_npy(path: &Path, p: &[GaussianPair]) {
    let dict = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, 4), }}",
        p.len()
    );
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    let total = (10 + dict.len() + 1).next_multiple_of(64);
    h.extend_from_slice(&((total - 10) as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.resize(total - 1, b' ');
    h.push(b'\n');
    for q in p {
        for v in [q.mu1, q.sigma1, q.mu2, q.sigma2] {
            h.extend_from_slice(&v.to_le_bytes());
        }
    }
    std::fs::write(path, h).unwrap();
}

/// The output read back: its column names, the measure columns as f64 and
/// the kept `id` column if there is one (as text).
struct Out {
    names: Vec<String>,
    measures: Vec<Vec<f64>>,
    ids: Option<Vec<String>>,
    f64_typed: bool,
}

fn batches_out(batches: Vec<RecordBatch>) -> Out {
    let schema = batches[0].schema();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut measures = Vec::new();
    let mut ids = None;
    let mut f64_typed = false;
    for (j, f) in schema.fields().iter().enumerate() {
        let mut col = Vec::new();
        let mut text = Vec::new();
        for b in &batches {
            let a = b.column(j);
            match f.data_type() {
                DataType::Float32 => col.extend(
                    a.as_primitive::<Float32Type>()
                        .values()
                        .iter()
                        .map(|&v| f64::from(v)),
                ),
                DataType::Float64 => {
                    f64_typed = true;
                    col.extend(a.as_primitive::<Float64Type>().values().iter().copied())
                }
                DataType::Int64 => text.extend(
                    a.as_primitive::<Int64Type>()
                        .values()
                        .iter()
                        .map(|v| v.to_string()),
                ),
                DataType::Utf8 => {
                    text.extend(a.as_string::<i32>().iter().map(|v| v.unwrap().to_string()))
                }
                t => panic!("unexpected output type {t}"),
            }
        }
        if f.name() == "id" {
            ids = Some(text);
        } else if matches!(f.data_type(), DataType::Float32 | DataType::Float64) {
            measures.push(col);
        }
    }
    Out {
        names,
        measures,
        ids,
        f64_typed,
    }
}

fn read_out(path: &Path) -> Out {
    let name = path.to_str().unwrap();
    if name.ends_with(".parquet") {
        let f = std::fs::File::open(path).unwrap();
        let r = ParquetRecordBatchReaderBuilder::try_new(f)
            .unwrap()
            .build()
            .unwrap();
        batches_out(r.map(|b| b.unwrap()).collect())
    } else if name.ends_with(".arrow") {
        let f = std::fs::File::open(path).unwrap();
        let r = arrow_ipc::reader::FileReader::try_new(f, None).unwrap();
        batches_out(r.map(|b| b.unwrap()).collect())
    } else if name.ends_with(".npy") {
        let bytes = std::fs::read(path).unwrap();
        let hl = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        let data = &bytes[10 + hl..];
        let vals: Vec<f32> = data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        Out {
            names: vec!["cross_entropy".into(), "kl".into()],
            measures: vec![
                vals.iter().step_by(2).map(|&v| f64::from(v)).collect(),
                vals.iter()
                    .skip(1)
                    .step_by(2)
                    .map(|&v| f64::from(v))
                    .collect(),
            ],
            ids: None,
            f64_typed: false,
        }
    } else {
        let text = std::fs::read_to_string(path).unwrap();
        let mut r = csv::ReaderBuilder::new().from_reader(text.as_bytes());
        let names: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
        let mut measures =
            vec![Vec::new(); names.iter().filter(|n| *n != "id" && *n != "label").count()];
        let mut ids = names.iter().any(|n| n == "id").then(Vec::new);
        for rec in r.records() {
            let rec = rec.unwrap();
            let mut m = 0;
            for (n, v) in names.iter().zip(rec.iter()) {
                if n == "id" {
                    ids.as_mut().unwrap().push(v.to_string());
                } else if n != "label" {
                    measures[m].push(f64::from(v.parse::<f32>().unwrap()));
                    m += 1;
                }
            }
        }
        Out {
            names,
            measures,
            ids,
            f64_typed: false,
        }
    }
}

fn check_measures(out: &Out, want: &[[f32; 2]]) {
    assert_eq!(out.measures.len(), 2, "{:?}", out.names);
    for (i, w) in want.iter().enumerate() {
        for (j, &want) in w.iter().enumerate() {
            let got = out.measures[j][i];
            assert!(
                got == f64::from(want) || (got.is_nan() && want.is_nan()),
                "row {i} measure {j}: {got} vs {want}"
            );
        }
    }
}

#[test]
fn every_input_and_output_format_round_trips() {
    let d = dir("formats");
    let p = pairs(2500);
    let want = expected(&p);
    let batch = table(&p, ["mu1", "sigma1", "mu2", "sigma2"], false);
    let ins: Vec<PathBuf> = ["in.csv", "in.npy", "in.parquet", "in.arrow", "in.feather"]
        .iter()
        .map(|n| d.path().join(n))
        .collect();
    write_csv(&ins[0], &p);
    write_npy(&ins[1], &p);
    write_parquet(&ins[2], &batch, 700);
    write_arrow(&ins[3], &batch, 600, false);
    write_arrow(&ins[4], &batch, 2500, false);
    for input in &ins {
        for ext in ["csv", "npy", "parquet", "arrow"] {
            let out = d.path().join(format!("out.{ext}"));
            let o = run(&["eval", s(input), "-o", s(&out), "--backend", "cpu"]);
            assert!(o.status.success(), "{input:?} -> {ext}: {}", stderr(&o));
            let r = read_out(&out);
            assert_eq!(r.names, ["cross_entropy", "kl"], "{input:?} -> {ext}");
            check_measures(&r, &want);
            // With --keep id (not for NPY, which has no names or holds only measures).
            let npy = input.extension().unwrap() == "npy";
            let o = run(&[
                "eval",
                s(input),
                "-o",
                s(&out),
                "--backend",
                "cpu",
                "--keep",
                "id,label",
            ]);
            if npy || ext == "npy" {
                assert_eq!(o.status.code(), Some(2), "{input:?} -> {ext}");
                assert!(stderr(&o).contains("--keep"), "{}", stderr(&o));
                continue;
            }
            assert!(
                o.status.success(),
                "{input:?} -> {ext} --keep: {}",
                stderr(&o)
            );
            let r = read_out(&out);
            assert_eq!(
                r.names,
                ["id", "label", "cross_entropy", "kl"],
                "{input:?} -> {ext}"
            );
            let ids = r.ids.as_ref().unwrap();
            assert_eq!(ids.len(), p.len());
            for (i, id) in ids.iter().enumerate() {
                assert_eq!(
                    id,
                    &(1000 - 3 * i as i64).to_string(),
                    "{input:?} -> {ext} row {i}"
                );
            }
            check_measures(&r, &want);
        }
    }
    // The kept strings survive, quoted in CSV.
    let out = d.path().join("k.csv");
    let o = run(&[
        "eval",
        s(&ins[2]),
        "-o",
        s(&out),
        "--backend",
        "cpu",
        "--keep-all",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.starts_with("id,label,cross_entropy,kl\n1000,\"k0,\"\"x\"\"\","),
        "{}",
        &text[..80]
    );
    assert_eq!(
        entries(d.path())
            .iter()
            .filter(|e| e.starts_with(".gaussdiv"))
            .count(),
        0
    );
}

#[test]
fn column_mapping_keep_and_precision() {
    let d = dir("columns");
    let p = pairs(3000);
    let want = expected(&p);
    let names = ["loc_p", "scale_p", "loc_q", "scale_q"];
    let t = d.path().join("t.parquet");
    write_parquet(&t, &table(&p, names, false), 1000);
    let out = d.path().join("o.parquet");
    let map = "mu1=loc_p,sigma1=scale_p,mu2=loc_q,sigma2=scale_q";
    let o = run(&[
        "eval",
        s(&t),
        "-o",
        s(&out),
        "--columns",
        map,
        "--keep",
        "id",
        "--backend",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_out(&out);
    assert_eq!(r.names, ["id", "cross_entropy", "kl"]);
    assert!(!r.f64_typed);
    assert_eq!(r.ids.as_ref().unwrap()[2999], (1000 - 3 * 2999).to_string());
    check_measures(&r, &want);
    // One output row group per input row group, zstd-compressed.
    let meta =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&out).unwrap()).unwrap();
    let md = meta.metadata();
    assert_eq!(md.num_row_groups(), 3);
    assert_eq!(md.row_group(1).num_rows(), 1000);
    assert!(matches!(
        md.row_group(0).column(1).compression(),
        parquet::basic::Compression::ZSTD(_)
    ));
    // Without the mapping the default names are missing: exit 2 naming them.
    let o = run(&["eval", s(&t), "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("lacks column(s) mu1, sigma1, mu2, sigma2"),
        "{}",
        stderr(&o)
    );
    // Double columns with --precision f64: float64 output against the f64 reference.
    let t64 = d.path().join("t64.parquet");
    write_parquet(&t64, &table(&p, names, true), 1000);
    let o = run(&[
        "eval",
        s(&t64),
        "-o",
        s(&out),
        "--columns",
        map,
        "--keep",
        "id",
        "--precision",
        "f64",
        "--backend",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_out(&out);
    assert!(r.f64_typed);
    for (i, q) in p.iter().enumerate() {
        let (m1, s1, m2, s2) = (
            f64::from(q.mu1),
            f64::from(q.sigma1),
            f64::from(q.mu2),
            f64::from(q.sigma2),
        );
        let kl = (s2 / s1).ln() + (s1 * s1 + (m1 - m2).powi(2)) / (2.0 * s2 * s2) - 0.5;
        assert!(
            (r.measures[1][i] - kl).abs() <= 1e-12 * (1.0 + kl.abs()),
            "row {i}"
        );
    }
    // The same mapping on CSV, with --param names.
    let csv = d.path().join("t.csv");
    std::fs::write(&csv, "key,m_a,v_a,m_b,v_b\nx,0,4,1,1\ny,1,1,1,1\n").unwrap();
    let o = run(&[
        "eval",
        s(&csv),
        "--columns",
        "mu1=m_a,var1=v_a,mu2=m_b,a2=v_b",
        "--param",
        "var",
        "--keep",
        "key",
        "--metrics",
        "kl",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "key,kl");
    assert!(lines[1].starts_with("x,"));
    assert_eq!(lines[2], "y,0.0");
    // Unknown mapping keys and kept names that clash are usage errors.
    let o = run(&["eval", s(&csv), "--columns", "sigma1=v_a", "--param", "var"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["eval", s(&t), "--columns", map, "--keep", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no column \"nope\""), "{}", stderr(&o));
}

#[test]
fn nulls_and_nan_under_both_policies() {
    let d = dir("nulls");
    let p = pairs(50);
    let mut want = expected(&p);
    let batch = table(&p, ["mu1", "sigma1", "mu2", "sigma2"], false);
    // Row 5: a null sigma1; row 7: NaN in mu2.
    let mut cols = batch.columns().to_vec();
    let s1 = cols[2].as_primitive::<Float32Type>();
    cols[2] = Arc::new(Float32Array::from_iter(
        s1.values()
            .iter()
            .enumerate()
            .map(|(i, &v)| (i != 5).then_some(v)),
    ));
    let m2 = cols[4].as_primitive::<Float32Type>();
    cols[4] = Arc::new(Float32Array::from_iter_values(
        m2.values()
            .iter()
            .enumerate()
            .map(|(i, &v)| if i == 7 { f32::NAN } else { v }),
    ));
    let bad = RecordBatch::try_new(batch.schema(), cols).unwrap();
    for (name, write) in [
        ("n.parquet", write_parquet as fn(&Path, &RecordBatch, usize)),
        ("n.arrow", |p: &Path, b: &RecordBatch, n: usize| {
            write_arrow(p, b, n, false)
        }),
    ] {
        let input = d.path().join(name);
        write(&input, &bad, 20);
        let out = d.path().join("o.parquet");
        let o = run(&["eval", s(&input), "-o", s(&out), "--backend", "cpu"]);
        assert_eq!(o.status.code(), Some(2), "{name}");
        let e = stderr(&o);
        assert!(
            e.contains("row 5 (0-based") && e.contains("column sigma1") && e.contains("null"),
            "{e}"
        );
        assert!(!out.exists());
        assert_eq!(entries(d.path()).len(), 1, "{:?}", entries(d.path()));
        // NaN in row 7 is reported by value once the null is allowed.
        let o = run(&[
            "eval",
            s(&input),
            "-o",
            s(&out),
            "--on-invalid",
            "nan",
            "--keep",
            "id",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        want[5] = [f32::NAN; 2];
        want[7] = [f32::NAN; 2];
        let r = read_out(&out);
        check_measures(&r, &want);
        assert_eq!(r.ids.unwrap().len(), 50);
        std::fs::remove_file(&out).unwrap();
        std::fs::remove_file(&input).unwrap();
    }
    // Only the NaN: the error names row 7, column mu2 and the value.
    let only_nan = RecordBatch::try_new(batch.schema(), {
        let mut c = bad.columns().to_vec();
        c[2] = batch.column(2).clone();
        c
    })
    .unwrap();
    let input = d.path().join("nan.parquet");
    write_parquet(&input, &only_nan, 64);
    let o = run(&["eval", s(&input), "-o", "/dev/null"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("row 7 (0-based; row group 0), column mu2: invalid value NaN"),
        "{e}"
    );
}

#[test]
fn malformed_and_truncated_files_exit_2_and_leave_nothing() {
    let d = dir("malformed");
    let p = pairs(300);
    let good = d.path().join("good.parquet");
    write_parquet(
        &good,
        &table(&p, ["mu1", "sigma1", "mu2", "sigma2"], false),
        100,
    );
    let bytes = std::fs::read(&good).unwrap();
    let arrow = d.path().join("good.arrow");
    write_arrow(
        &arrow,
        &table(&p, ["mu1", "sigma1", "mu2", "sigma2"], false),
        100,
        false,
    );
    let abytes = std::fs::read(&arrow).unwrap();
    let work = dir("malformed-work");
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    for cut in [
        0,
        3,
        8,
        12,
        100,
        bytes.len() / 2,
        bytes.len() - 9,
        bytes.len() - 1,
    ] {
        cases.push(("bad.parquet", bytes[..cut].to_vec()));
    }
    cases.push((
        "bad.parquet",
        b"PAR1 this is not a parquet file PAR1".to_vec(),
    ));
    for cut in [0, 6, 100, abytes.len() / 2, abytes.len() - 1] {
        cases.push(("bad.arrow", abytes[..cut].to_vec()));
    }
    cases.push(("bad.feather", b"FEA1 old feather".to_vec()));
    // The IPC stream format is refused by name.
    let stream = work.path().join("s.arrow");
    write_arrow(
        &stream,
        &table(&p, ["mu1", "sigma1", "mu2", "sigma2"], false),
        100,
        true,
    );
    cases.push(("stream.arrow", std::fs::read(&stream).unwrap()));
    std::fs::remove_file(&stream).unwrap();
    for (name, data) in &cases {
        let input = work.path().join(name);
        std::fs::write(&input, data).unwrap();
        let out = work.path().join("out.parquet");
        let o = run(&["eval", s(&input), "-o", s(&out), "--backend", "cpu"]);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{name} of {} bytes: {}",
            data.len(),
            stderr(&o)
        );
        let e = stderr(&o);
        assert!(
            e.starts_with("gaussdiv: error: ") && e.contains(name),
            "{e}"
        );
        assert!(!e.contains("panicked"), "{e}");
        assert_eq!(entries(work.path()), [name.to_string()]);
        std::fs::remove_file(&input).unwrap();
    }
}

/// Peak resident memory (KiB) of a child process, from wait4's rusage (the
/// child is reaped by wait4, so std's `wait` is not called).
#[allow(clippy::zombie_processes)]
fn run_measuring_rss(args: &[&str]) -> (i32, i64) {
    let child = bin().args(args).spawn().unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid);
    (libc::WEXITSTATUS(status), usage.ru_maxrss)
}

#[test]
fn a_file_larger_than_the_bound_streams_in_bounded_memory() {
    // 20 Mi rows of an int64 id and four float32 (320 MiB of inputs, 160 MiB
    // of results, 160 MiB of kept ids) in 20 row groups, 20 times the
    // reader's chunk: the tool's peak RSS stays below 256 MiB, which holding
    // the input would exceed (about 170-190 MiB are measured, as for 12 Mi rows: the
    // bound follows the chunk size, not the file size).
    let d = dir("memory");
    let rows = 20 << 20;
    let group = 1 << 20;
    let input = d.path().join("big.parquet");
    {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("mu1", DataType::Float32, false),
            Field::new("sigma1", DataType::Float32, false),
            Field::new("mu2", DataType::Float32, false),
            Field::new("sigma2", DataType::Float32, false),
        ]));
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(group))
            .set_dictionary_enabled(false)
            .build();
        let f = std::fs::File::create(&input).unwrap();
        let mut w = ArrowWriter::try_new(f, schema.clone(), Some(props)).unwrap();
        for g in 0..rows / group {
            let base = (g * group) as i64;
            let x = |k: u32| -> ArrayRef {
                Arc::new(Float32Array::from_iter_values((0..group as u32).map(
                    move |i| {
                        1.0 + (i.wrapping_mul(2654435761).wrapping_add(k) >> 8) as f32 / 16777216.0
                    },
                )))
            };
            let b = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from_iter_values(base..base + group as i64)),
                    x(1),
                    x(2),
                    x(3),
                    x(4),
                ],
            )
            .unwrap();
            w.write(&b).unwrap();
            w.flush().unwrap();
        }
        w.close().unwrap();
    }
    let size = std::fs::metadata(&input).unwrap().len();
    assert!(
        size > 256 << 20,
        "the file ({size} bytes) must be larger than the bound"
    );
    let out = d.path().join("out.parquet");
    let (code, rss_kib) = run_measuring_rss(&[
        "eval",
        s(&input),
        "-o",
        s(&out),
        "--backend",
        "cpu",
        "--keep",
        "id",
    ]);
    assert_eq!(code, 0);
    println!(
        "peak RSS {} MiB for a {} MiB Parquet file",
        rss_kib / 1024,
        size >> 20
    );
    assert!(rss_kib < 256 * 1024, "peak RSS {rss_kib} KiB");
    let meta =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&out).unwrap()).unwrap();
    assert_eq!(meta.metadata().file_metadata().num_rows(), rows as i64);
    assert_eq!(meta.metadata().num_row_groups(), 20);
}

#[test]
fn the_library_has_no_arrow_or_parquet_dependency() {
    let manifest = include_str!("../../gaussdiv/Cargo.toml");
    for dep in ["arrow", "parquet"] {
        assert!(
            !manifest.lines().any(|l| l.trim_start().starts_with(dep)),
            "gaussdiv/Cargo.toml names {dep}"
        );
    }
}
