//! Fuzz target: arbitrary bytes as a pickle stream must not panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = modelyard_analyze::scan_pickle(data);
});
