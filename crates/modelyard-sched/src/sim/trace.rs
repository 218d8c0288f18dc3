//! Job traces: the Philly trace's CSV and a documented generic CSV, read into [`TraceJob`]s.
//!
//! Generic CSV: a header row naming at least `submit_s` (submission time in seconds, any
//! origin), `duration_s` (running time on a reference node, seconds) and `gpus`; optionally
//! `group` (jobs of one group share datasets, like a team), `dataset` (a name) and
//! `dataset_bytes`. Columns may come in any order; unknown columns are ignored. A trace without
//! datasets gets them from [`super::datasets::DatasetModel`].
//!
//! Philly (`timestamp,duration,num_gpus,gpu_time,cluster`): `timestamp` is
//! `YYYY-MM-DD HH:MM:SS` (UTC), `cluster` (the virtual cluster) becomes the group.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// One job of a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceJob {
    pub submit_s: f64,
    pub duration_s: f64,
    pub gpus: u32,
    pub group: String,
    /// Name and size in bytes of its dataset, when the trace says.
    pub dataset: Option<(String, u64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("line {line}: {msg}")]
    Parse { line: usize, msg: String },
}

fn parse_err(line: usize, msg: impl Into<String>) -> TraceError {
    TraceError::Parse {
        line,
        msg: msg.into(),
    }
}

/// Reads a trace file, Philly or generic by its header, one line at a time.
pub fn load(path: &Path) -> Result<Vec<TraceJob>, TraceError> {
    let io = |source| TraceError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut lines = BufReader::new(File::open(path).map_err(io)?).lines();
    let header = lines.next().transpose().map_err(io)?.unwrap_or_default();
    let mut reader = TraceReader::new(&header)?;
    for l in lines {
        reader.push(&l.map_err(io)?)?;
    }
    Ok(reader.finish())
}

/// Parses a trace, Philly or generic by its header.
pub fn parse(text: &str) -> Result<Vec<TraceJob>, TraceError> {
    let mut lines = text.lines();
    let mut reader = TraceReader::new(lines.next().unwrap_or_default())?;
    for l in lines {
        reader.push(l)?;
    }
    Ok(reader.finish())
}

/// Column positions of one of the two formats.
enum Format {
    /// The Philly trace as published with the Sia artifact.
    Philly {
        ts: usize,
        dur: usize,
        gpus: usize,
        group: Option<usize>,
    },
    /// The generic CSV described in the module docs.
    Generic {
        sub: usize,
        dur: usize,
        gpus: usize,
        group: Option<usize>,
        dataset: Option<usize>,
        bytes: Option<usize>,
    },
}

/// A trace fed one line at a time (from a file, or a stream out of blob storage), so the
/// text is never held whole; only the parsed jobs are kept.
pub struct TraceReader {
    format: Format,
    /// The 1-based number of the last line pushed (the header is line 1).
    line: usize,
    jobs: Vec<TraceJob>,
}

impl TraceReader {
    /// Chooses the format from the header row: Philly when it names `num_gpus`.
    pub fn new(header: &str) -> Result<Self, TraceError> {
        let cols: Vec<&str> = header.split(',').map(str::trim).collect();
        let find = |n: &str| cols.iter().position(|c| *c == n);
        let col = |n: &str| find(n).ok_or_else(|| parse_err(1, format!("no column {n:?}")));
        let format = if find("num_gpus").is_some() {
            Format::Philly {
                ts: col("timestamp")?,
                dur: col("duration")?,
                gpus: col("num_gpus")?,
                group: find("cluster"),
            }
        } else {
            Format::Generic {
                sub: col("submit_s")?,
                dur: col("duration_s")?,
                gpus: col("gpus")?,
                group: find("group"),
                dataset: find("dataset"),
                bytes: find("dataset_bytes"),
            }
        };
        Ok(Self {
            format,
            line: 1,
            jobs: Vec::new(),
        })
    }

    /// Parses the next line; blank lines are skipped.
    pub fn push(&mut self, l: &str) -> Result<(), TraceError> {
        self.line += 1;
        if l.trim().is_empty() {
            return Ok(());
        }
        let line = self.line;
        let f: Vec<&str> = l.split(',').map(str::trim).collect();
        let text = |c: Option<usize>| c.and_then(|c| f.get(c).copied()).unwrap_or_default();
        let job = match self.format {
            Format::Philly {
                ts,
                dur,
                gpus,
                group,
            } => {
                let t = f
                    .get(ts)
                    .ok_or_else(|| parse_err(line, "missing timestamp"))?;
                TraceJob {
                    submit_s: parse_timestamp(t)
                        .ok_or_else(|| parse_err(line, format!("bad timestamp {t:?}")))?,
                    duration_s: num(f.get(dur).copied(), line, "duration")?,
                    gpus: num::<f64>(f.get(gpus).copied(), line, "num_gpus")? as u32,
                    group: text(group).to_owned(),
                    dataset: None,
                }
            }
            Format::Generic {
                sub,
                dur,
                gpus,
                group,
                dataset,
                bytes,
            } => {
                let name = text(dataset);
                let dataset = match bytes {
                    _ if name.is_empty() => None,
                    Some(b) => Some((
                        name.to_owned(),
                        num(f.get(b).copied(), line, "dataset_bytes")?,
                    )),
                    None => {
                        return Err(parse_err(
                            line,
                            format!("dataset {name:?} without dataset_bytes"),
                        ))
                    }
                };
                TraceJob {
                    submit_s: num(f.get(sub).copied(), line, "submit_s")?,
                    duration_s: num(f.get(dur).copied(), line, "duration_s")?,
                    gpus: num(f.get(gpus).copied(), line, "gpus")?,
                    group: text(group).to_owned(),
                    dataset,
                }
            }
        };
        if !(job.duration_s.is_finite() && job.duration_s >= 0.0 && job.submit_s.is_finite()) {
            return Err(parse_err(
                line,
                "times must be finite, durations not negative",
            ));
        }
        self.jobs.push(job);
        Ok(())
    }

    /// Jobs read so far.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// The jobs, in file order.
    pub fn finish(self) -> Vec<TraceJob> {
        self.jobs
    }
}

fn num<T: std::str::FromStr>(
    field: Option<&str>,
    line: usize,
    what: &str,
) -> Result<T, TraceError> {
    let f = field.ok_or_else(|| parse_err(line, format!("missing {what}")))?;
    f.trim()
        .parse()
        .map_err(|_| parse_err(line, format!("bad {what} {f:?}")))
}

/// The first `n` jobs by submission time (ties keep file order), times shifted so the first
/// submission is at 0.
pub fn first_n(mut jobs: Vec<TraceJob>, n: Option<usize>) -> Vec<TraceJob> {
    jobs.sort_by(|a, b| a.submit_s.total_cmp(&b.submit_s));
    if let Some(n) = n {
        jobs.truncate(n);
    }
    let t0 = jobs.first().map_or(0.0, |j| j.submit_s);
    for j in &mut jobs {
        j.submit_s -= t0;
    }
    jobs
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) to seconds since 1970.
fn parse_timestamp(s: &str) -> Option<f64> {
    let s = s.trim();
    let (date, time) = s.split_once(' ')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, dd) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':').map(|x| x.parse::<i64>());
    let (h, mi, se) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + mi * 60 + se) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn philly_rows_and_order() {
        let text = "timestamp,duration,num_gpus,gpu_time,cluster\n\
                    2017-10-09 07:01:55,66.0,1,66.0,11cb48\n\
                    2017-10-09 06:13:03,2951.0,2,5902.0,6214e9\n";
        let jobs = first_n(parse(text).unwrap(), None);
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].gpus, 2);
        assert_eq!(jobs[0].submit_s, 0.0);
        assert_eq!(jobs[1].submit_s, 48.0 * 60.0 + 52.0);
        assert_eq!(jobs[1].group, "11cb48");
        assert_eq!(parse_timestamp("1970-01-02 00:00:01"), Some(86_401.0));
        assert_eq!(
            parse_timestamp("2017-10-09 07:01:55"),
            Some(1_507_532_515.0)
        );
    }

    #[test]
    fn generic_with_and_without_datasets() {
        let text = "gpus,submit_s,duration_s,dataset,dataset_bytes,extra\n1,5,10,imagenet,1000,x\n4,0,20,,,y\n";
        let jobs = first_n(parse(text).unwrap(), Some(1));
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].gpus, 4);
        assert_eq!(jobs[0].dataset, None);
        let all = parse(text).unwrap();
        assert_eq!(all[0].dataset, Some(("imagenet".into(), 1000)));
        assert!(parse("submit_s,gpus\n1,1\n").is_err());
    }

    #[test]
    fn bad_rows_name_their_line() {
        let err = |t: &str| parse(t).unwrap_err().to_string();
        let h = "submit_s,duration_s,gpus\n";
        assert_eq!(
            err(&format!("{h}0,1,1\n\n5,x,1\n")),
            "line 4: bad duration_s \"x\""
        );
        assert!(err(&format!("{h}0,-3,1\n")).starts_with("line 2: "));
        assert!(err(&format!("{h}0,NaN,1\n")).starts_with("line 2: "));
        assert_eq!(
            err("timestamp,duration,num_gpus\n2017-13-x 00:00:00,1,1\n"),
            "line 2: bad timestamp \"2017-13-x 00:00:00\""
        );
    }
}
