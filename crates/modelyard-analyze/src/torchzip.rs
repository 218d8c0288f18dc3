//! Pickle-based checkpoints: plain pickle streams and zip-wrapped torch files, read capped.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::pickle::{scan_pickle, PickleScan};
use crate::{AnalyzeError, ModelFeatures, ModelFormat, Safety};

/// Default cap on uncompressed bytes read out of one archive (defeats zip bombs).
pub const MAX_UNCOMPRESSED_BYTES: u64 = 1 << 30;
/// Archives with more members than this are refused.
const MAX_ZIP_ENTRIES: usize = 100_000;

/// A reader that fails once more than `left` bytes have been read through it.
struct Capped<R> {
    inner: R,
    left: u64,
    read: u64,
    exceeded: bool,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.left {
            self.exceeded = true;
            return Err(io::Error::other("uncompressed size limit reached"));
        }
        Ok(n)
    }
}

/// Analyses a `.bin`/`.pt`/`.pth`/`.ckpt` file with the default uncompressed-size cap.
pub fn analyze_pickle_file(path: &Path) -> Result<ModelFeatures, AnalyzeError> {
    analyze_pickle_file_with(path, MAX_UNCOMPRESSED_BYTES)
}

pub(crate) fn analyze_pickle_file_with(
    path: &Path,
    cap: u64,
) -> Result<ModelFeatures, AnalyzeError> {
    let io = |source| AnalyzeError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic).map_err(io)?;
    drop(file);
    let file = File::open(path).map_err(io)?;
    let mut f = ModelFeatures::empty(ModelFormat::Pickle);
    let scans = if n == 4 && &magic == b"PK\x03\x04" {
        scan_zip(file, cap, &mut f)?
    } else {
        vec![scan_pickle(file)?]
    };
    for s in scans {
        if s.trailing_data {
            f.warnings
                .push("raw data follows the pickles (legacy torch storages); not scanned".into());
        }
        for g in s.globals {
            if !f.imports.contains(&g) {
                f.imports.push(g);
            }
        }
    }
    let bad: Vec<String> = f
        .imports
        .iter()
        .filter(|g| !crate::pickle::allowed(g))
        .cloned()
        .collect();
    f.safety = Some(if bad.is_empty() {
        Safety::Safe
    } else {
        Safety::Unsafe { imports: bad }
    });
    f.warnings
        .push("parameter counts are not computed for pickle checkpoints".into());
    Ok(f)
}

fn scan_zip(file: File, cap: u64, f: &mut ModelFeatures) -> Result<Vec<PickleScan>, AnalyzeError> {
    let mut zip = zip::ZipArchive::new(file).map_err(|e| AnalyzeError::BadZip(e.to_string()))?;
    if zip.len() > MAX_ZIP_ENTRIES {
        return Err(AnalyzeError::BadZip(format!(
            "{} members, over the limit of {MAX_ZIP_ENTRIES}",
            zip.len()
        )));
    }
    let mut used = 0u64;
    let mut storage = 0u64;
    let mut scans = Vec::new();
    for i in 0..zip.len() {
        let entry = zip
            .by_index(i)
            .map_err(|e| AnalyzeError::BadZip(e.to_string()))?;
        let name = entry
            .name()
            .map_err(|e| AnalyzeError::BadZip(e.to_string()))?
            .into_owned();
        if name.contains("/data/") && !entry.is_dir() {
            storage = storage.saturating_add(entry.size());
        }
        if !name.ends_with(".pkl") {
            continue;
        }
        let left = cap.saturating_sub(used);
        if entry.size() > left {
            return Err(AnalyzeError::ZipBomb { limit: cap });
        }
        let mut capped = Capped {
            inner: entry,
            left,
            read: 0,
            exceeded: false,
        };
        let result = scan_pickle(&mut capped);
        if capped.exceeded {
            return Err(AnalyzeError::ZipBomb { limit: cap });
        }
        used += capped.read;
        scans.push(result.map_err(|e| match e {
            AnalyzeError::Read(e) => AnalyzeError::BadZip(format!("{name}: {e}")),
            e => e,
        })?);
    }
    if scans.is_empty() {
        return Err(AnalyzeError::BadZip(
            "no pickle (data.pkl) in the archive".into(),
        ));
    }
    if storage > 0 {
        f.warnings
            .push(format!("{storage} bytes of tensor storage in the archive"));
    }
    Ok(scans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_reader_fails_past_its_limit() {
        let data = [7u8; 100];
        let mut c = Capped {
            inner: &data[..],
            left: 50,
            read: 0,
            exceeded: false,
        };
        let mut sink = Vec::new();
        assert!(c.read_to_end(&mut sink).is_err());
        assert!(c.exceeded);
        let mut ok = Capped {
            inner: &data[..],
            left: 100,
            read: 0,
            exceeded: false,
        };
        assert_eq!(ok.read_to_end(&mut Vec::new()).expect("within cap"), 100);
        assert!(!ok.exceeded);
    }
}
