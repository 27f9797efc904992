//! The tool's Parquet and Arrow IPC readers on arbitrary bytes: rows or an
//! error, never a panic. The second byte chooses the format; half the inputs
//! are made to look like Parquet (magic at both ends) so that the fuzzer
//! spends its time in the footer and the pages rather than in the magic.
#![no_main]

use gaussdiv_cli as cli;
#[path = "readers_common.rs"]
mod readers_common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Some((&kind, body)) = rest.split_first() else {
        return;
    };
    let format = if kind & 1 == 0 {
        cli::io::Format::Parquet
    } else {
        cli::io::Format::Arrow
    };
    let mut v = vec![flags];
    if kind & 2 != 0 && format == cli::io::Format::Parquet {
        v.extend_from_slice(b"PAR1");
        v.extend_from_slice(body);
        v.extend_from_slice(b"PAR1");
    } else {
        v.extend_from_slice(body);
    }
    readers_common::read_all(&v, format);
});
