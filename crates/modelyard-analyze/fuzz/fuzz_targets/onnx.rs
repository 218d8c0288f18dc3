//! Fuzz target: arbitrary bytes through the ONNX analyser must not panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = modelyard_analyze::analyze_onnx_bytes(data);
});
