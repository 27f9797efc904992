//! The tool's CSV reader on arbitrary bytes: rows or an error, never a panic.
#![no_main]

use gaussdiv_cli as cli;
#[path = "readers_common.rs"]
mod readers_common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    readers_common::read_all(data, cli::io::Format::Csv);
});
