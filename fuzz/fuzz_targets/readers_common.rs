//! Shared by the reader targets: read every row of `data` with the tool's
//! reader; the first byte chooses f32/f64 rows and the invalid-row policy.
use gaussdiv_cli::io::{source_from_reader, Format, Rows};
use std::io::Cursor;

pub fn read_all(data: &[u8], format: Format) {
    let Some((&flags, bytes)) = data.split_first() else {
        return;
    };
    let f64_mode = flags & 1 != 0;
    let reject = flags & 2 != 0;
    let chunk = 1 + usize::from(flags >> 5);
    let param = gaussdiv::Param::ALL[usize::from((flags >> 2) & 7) % gaussdiv::Param::ALL.len()];
    let reader = Box::new(Cursor::new(bytes.to_vec()));
    let Ok(mut src) = source_from_reader(reader, "fuzz".into(), format, reject, param) else {
        return;
    };
    let mut rows = if f64_mode {
        Rows::F64(Vec::new())
    } else {
        Rows::F32(Vec::new())
    };
    let mut total = 0usize;
    loop {
        match src.read(chunk, &mut rows) {
            Ok(0) => break,
            Ok(n) => {
                assert!(n <= chunk && rows.len() == n);
                total += n;
                assert!(total <= bytes.len(), "more rows than bytes");
            }
            Err(e) => {
                assert!(!e.message.is_empty());
                break;
            }
        }
    }
}
