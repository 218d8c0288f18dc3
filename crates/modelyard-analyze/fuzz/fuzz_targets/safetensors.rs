//! Fuzz target: arbitrary bytes as a safetensors file must not panic or over-allocate.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut cursor = std::io::Cursor::new(data);
    let _ = modelyard_analyze::analyze_safetensors_reader(&mut cursor, data.len() as u64, 1 << 20);
});
