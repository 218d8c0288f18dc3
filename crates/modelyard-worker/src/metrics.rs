//! Tailing a job's metrics file: JSON lines `{"step":..,"name":..,"value":..}` appended by the
//! job, read incrementally (a line counts once it ends with a newline).

use std::io::{self, SeekFrom};
use std::path::PathBuf;

use modelyard_core::protocol::Metric;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Longest line accepted; a longer one is skipped rather than buffered forever.
const MAX_LINE: usize = 64 * 1024;

#[derive(serde::Deserialize)]
struct Line {
    #[serde(default)]
    step: i64,
    name: String,
    value: f64,
}

/// Reads new complete lines of one metrics file each time it is polled.
#[derive(Debug)]
pub struct MetricsTail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    skipped: u64,
}

impl MetricsTail {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            offset: 0,
            partial: Vec::new(),
            skipped: 0,
        }
    }

    /// Lines that were not valid metrics so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The metrics appended since the last poll. A missing file yields nothing.
    pub async fn poll(&mut self) -> io::Result<Vec<Metric>> {
        let mut file = match tokio::fs::File::open(&self.path).await {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let len = file.metadata().await?.len();
        if len < self.offset {
            // Truncated or replaced by the job: start over.
            self.offset = 0;
            self.partial.clear();
        }
        file.seek(SeekFrom::Start(self.offset)).await?;
        let mut buf = Vec::new();
        let read = file.read_to_end(&mut buf).await?;
        self.offset += read as u64;
        self.partial.extend_from_slice(&buf);

        let mut out = Vec::new();
        let mut start = 0;
        while let Some(pos) = self.partial[start..].iter().position(|&b| b == b'\n') {
            let line = &self.partial[start..start + pos];
            start += pos + 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Line>(line) {
                Ok(l) if l.value.is_finite() => out.push(Metric {
                    seq: 0, // numbered by the reporter
                    step: l.step,
                    name: l.name,
                    value: l.value,
                }),
                _ => self.skipped += 1,
            }
        }
        self.partial.drain(..start);
        if self.partial.len() > MAX_LINE {
            self.partial.clear();
            self.skipped += 1;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[tokio::test]
    async fn reads_complete_lines_incrementally() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let mut tail = MetricsTail::new(path.clone());
        assert!(
            tail.poll().await.unwrap().is_empty(),
            "missing file is empty"
        );

        let mut f = std::fs::File::create(&path).unwrap();
        write!(
            f,
            "{{\"step\":1,\"name\":\"loss\",\"value\":0.5}}\n{{\"step\":2,\"na"
        )
        .unwrap();
        f.flush().unwrap();
        let got = tail.poll().await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].step, got[0].name.as_str(), got[0].value),
            (1, "loss", 0.5)
        );

        write!(f, "me\":\"loss\",\"value\":0.25}}\nnot json\n\n").unwrap();
        writeln!(f, "{{\"name\":\"acc\",\"value\":0.9}}").unwrap();
        f.flush().unwrap();
        let got = tail.poll().await.unwrap();
        let seen: Vec<(i64, &str, f64)> = got
            .iter()
            .map(|m| (m.step, m.name.as_str(), m.value))
            .collect();
        assert_eq!(seen, vec![(2, "loss", 0.25), (0, "acc", 0.9)]);
        assert_eq!(tail.skipped(), 1);
        assert!(tail.poll().await.unwrap().is_empty(), "nothing new");
    }
}
