//! A deterministic mini-fuzz: thousands of corrupted copies of real files must never panic.

use std::io::Cursor;
use std::path::PathBuf;

use modelyard_analyze::{analyze_onnx_bytes, analyze_safetensors_reader, scan_pickle};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Flips, overwrites or truncates a few bytes of `seed`.
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let i = rng.below(b.len());
        match rng.below(4) {
            0 => b[i] ^= 1 << rng.below(8),
            1 => b[i] = rng.next() as u8,
            2 => b[i] = [0, 0x7f, 0x80, 0xff][rng.below(4)],
            _ => b.truncate(i.max(1)),
        }
    }
    b
}

#[test]
fn corrupted_inputs_never_panic() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let seed = std::env::var("MUTATION_SEED")
        .ok()
        .and_then(|s| s.parse().ok());
    let mut rng = Rng(seed.unwrap_or(0x9e37_79b9_7f4a_7c15));
    let mut outcomes = [0usize; 2];
    for file in [
        "mnist-8.onnx",
        "light_shufflenet.onnx",
        "light_squeezenet.onnx",
    ] {
        let seed = std::fs::read(dir.join(file)).expect("model");
        for _ in 0..300 {
            outcomes[usize::from(analyze_onnx_bytes(&mutate(&seed, &mut rng)).is_ok())] += 1;
        }
    }
    let header = br#"{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]}}"#;
    let mut st = (header.len() as u64).to_le_bytes().to_vec();
    st.extend(header);
    st.extend([0u8; 32]);
    for _ in 0..2000 {
        let m = mutate(&st, &mut rng);
        let r = analyze_safetensors_reader(&mut Cursor::new(&m), m.len() as u64, 1 << 20);
        outcomes[usize::from(r.is_ok())] += 1;
    }
    let pickle: &[u8] = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01X\x06\x00\x00\x00weightq\x02ctorch._utils\n_rebuild_tensor_v2\nq\x03((X\x07\x00\x00\x00storageq\x04ctorch\nFloatStorage\nq\x05X\x01\x00\x00\x000q\x06K\x04tq\x08QK\x00K\x04\x85q\tK\x01\x85q\n\x89h\x00)Rq\x0btq\x0cRq\rs.";
    for _ in 0..2000 {
        outcomes[usize::from(scan_pickle(&mutate(pickle, &mut rng)[..]).is_ok())] += 1;
    }
    // Both outcomes occur: the mutations reach past the first sanity checks.
    assert!(outcomes[0] > 100 && outcomes[1] > 100, "{outcomes:?}");
}
