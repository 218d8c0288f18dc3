//! Pickle scanning: malicious imports are flagged, torch checkpoints pass, nothing runs.

use std::io::Write;
use std::path::{Path, PathBuf};

use modelyard_analyze::{analyze_path, scan_pickle, AnalyzeError, ModelFormat, Safety};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write");
    p
}

/// `os.system("whoami")` the protocol-2 way: GLOBAL, an argument tuple, REDUCE.
const OS_SYSTEM: &[u8] = b"\x80\x02cos\nsystem\nq\x00X\x06\x00\x00\x00whoamiq\x01\x85q\x02Rq\x03.";

/// The protocol-4 way: two memoized strings, STACK_GLOBAL, REDUCE.
fn posix_system_stack_global() -> Vec<u8> {
    let body: &[u8] = b"\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x02id\x94\x85\x94R\x94.";
    let mut out = vec![0x80, 4, 0x95];
    out.extend((body.len() as u64).to_le_bytes());
    out.extend(body);
    out
}

/// What `torch.save` writes for `OrderedDict(weight=FloatTensor(4))` (protocol 2, one storage).
const TORCH_STATE_DICT: &[u8] = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01X\x06\x00\x00\x00weightq\x02ctorch._utils\n_rebuild_tensor_v2\nq\x03((X\x07\x00\x00\x00storageq\x04ctorch\nFloatStorage\nq\x05X\x01\x00\x00\x000q\x06X\x03\x00\x00\x00cpuq\x07K\x04tq\x08QK\x00K\x04\x85q\tK\x01\x85q\n\x89h\x00)Rq\x0btq\x0cRq\rsh\x00)Rq\x0e\x86b.";

#[test]
fn os_system_is_unsafe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = analyze_path(&write(dir.path(), "evil.bin", OS_SYSTEM)).expect("scan");
    assert_eq!(f.format, ModelFormat::Pickle);
    assert_eq!(
        f.safety,
        Some(Safety::Unsafe {
            imports: vec!["os.system".into()]
        })
    );
    assert_eq!(f.imports, ["os.system"]);
}

#[test]
fn stack_global_is_resolved_through_the_memo() {
    let scan = scan_pickle(&posix_system_stack_global()[..]).expect("scan");
    assert_eq!(scan.globals, ["posix.system"]);
    assert_eq!(scan.unsafe_globals, ["posix.system"]);
    assert_eq!(scan.pickles, 1);
    // BINGET of a memoized string feeds STACK_GLOBAL too.
    let body = b"\x80\x04\x8c\x08builtins\x94\x8c\x04eval\x94h\x00h\x01\x93).";
    assert_eq!(
        scan_pickle(&body[..]).expect("scan").unsafe_globals,
        ["builtins.eval"]
    );
    // A STACK_GLOBAL whose operands are not plain strings cannot be cleared.
    let opaque = b"\x80\x04K\x01K\x02\x93.";
    assert_eq!(
        scan_pickle(&opaque[..]).expect("scan").unsafe_globals,
        ["<unresolved STACK_GLOBAL>"]
    );
}

#[test]
fn torch_state_dict_is_safe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = analyze_path(&write(dir.path(), "model.pt", TORCH_STATE_DICT)).expect("scan");
    assert_eq!(f.safety, Some(Safety::Safe));
    assert_eq!(
        f.imports,
        [
            "collections.OrderedDict",
            "torch._utils._rebuild_tensor_v2",
            "torch.FloatStorage"
        ]
    );
}

#[test]
fn legacy_torch_file_stops_at_raw_storage() {
    // Legacy torch.save: several pickles back to back, then raw storage bytes.
    let mut bytes = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.".to_vec();
    bytes.extend(TORCH_STATE_DICT);
    bytes.extend([0x01, 0, 0, 0, 0, 0, 0, 0, 0xde, 0xad]);
    let scan = scan_pickle(&bytes[..]).expect("scan");
    assert_eq!(scan.pickles, 2);
    assert!(scan.trailing_data);
    assert!(scan.unsafe_globals.is_empty());
}

#[test]
fn zip_wrapped_torch_file_is_scanned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pytorch_model.bin");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).expect("create"));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("archive/data.pkl", stored).expect("entry");
    zip.write_all(OS_SYSTEM).expect("write");
    zip.start_file("archive/data/0", stored).expect("entry");
    zip.write_all(&[0u8; 16]).expect("write");
    zip.start_file("archive/version", stored).expect("entry");
    zip.write_all(b"3\n").expect("write");
    zip.finish().expect("finish");
    let f = analyze_path(&path).expect("scan");
    assert_eq!(
        f.safety,
        Some(Safety::Unsafe {
            imports: vec!["os.system".into()]
        })
    );
    assert!(
        f.warnings
            .iter()
            .any(|w| w.contains("16 bytes of tensor storage")),
        "{:?}",
        f.warnings
    );
}

#[test]
fn broken_pickles_are_errors() {
    assert!(matches!(
        scan_pickle(&b"\x80\x02cos\nsys"[..]),
        Err(AnalyzeError::Truncated(_))
    ));
    assert!(matches!(
        scan_pickle(&b"\x80\x02\xff."[..]),
        Err(AnalyzeError::BadPickle(_))
    ));
    assert!(matches!(
        scan_pickle(&b""[..]),
        Err(AnalyzeError::BadPickle(_))
    ));
    // A BINBYTES8 claiming 2^60 bytes is skipped by streaming, then found truncated.
    let mut huge = b"\x80\x04\x8e".to_vec();
    huge.extend((1u64 << 60).to_le_bytes());
    assert!(matches!(
        scan_pickle(&huge[..]),
        Err(AnalyzeError::Truncated(_))
    ));
}
