//! The tool's NPY reader on arbitrary bytes: rows or an error, never a panic.
#![no_main]

use gaussdiv_cli as cli;
#[path = "readers_common.rs"]
mod readers_common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // Half the inputs get a valid NPY preamble, so that the fuzzer spends its
    // time in the dictionary and the data rather than in the magic bytes.
    if data.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v = b"\x93NUMPY\x01\x00".to_vec();
        v.extend_from_slice(&data[1..]);
        readers_common::read_all(
            &[data[0] & 0x7f]
                .iter()
                .chain(&v)
                .copied()
                .collect::<Vec<u8>>(),
            cli::io::Format::Npy,
        );
    } else {
        readers_common::read_all(data, cli::io::Format::Npy);
    }
});
