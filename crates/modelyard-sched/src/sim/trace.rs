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

/// Reads a trace file, Philly or generic by its header.
pub fn load(path: &Path) -> Result<Vec<TraceJob>, TraceError> {
    let text = std::fs::read_to_string(path).map_err(|source| TraceError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text)
}

/// Parses a trace, Philly or generic by its header.
pub fn parse(text: &str) -> Result<Vec<TraceJob>, TraceError> {
    let header = text.lines().next().unwrap_or_default();
    if header.split(',').any(|c| c.trim() == "num_gpus") {
        parse_philly(text)
    } else {
        parse_generic(text)
    }
}

fn columns(header: &str) -> Vec<&str> {
    header.split(',').map(str::trim).collect()
}

fn col(cols: &[&str], name: &str) -> Result<usize, TraceError> {
    cols.iter()
        .position(|c| *c == name)
        .ok_or_else(|| parse_err(1, format!("no column {name:?}")))
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

/// The Philly trace as published with the Sia artifact.
pub fn parse_philly(text: &str) -> Result<Vec<TraceJob>, TraceError> {
    let mut lines = text.lines();
    let cols = columns(lines.next().unwrap_or_default());
    let (ts, dur, gpus) = (
        col(&cols, "timestamp")?,
        col(&cols, "duration")?,
        col(&cols, "num_gpus")?,
    );
    let group = cols.iter().position(|c| *c == "cluster");
    let mut out = Vec::new();
    for (i, l) in lines.enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        let line = i + 2;
        let f: Vec<&str> = l.split(',').collect();
        let t = f
            .get(ts)
            .ok_or_else(|| parse_err(line, "missing timestamp"))?;
        out.push(TraceJob {
            submit_s: parse_timestamp(t)
                .ok_or_else(|| parse_err(line, format!("bad timestamp {t:?}")))?,
            duration_s: num(f.get(dur).copied(), line, "duration")?,
            gpus: num::<f64>(f.get(gpus).copied(), line, "num_gpus")? as u32,
            group: group
                .and_then(|g| f.get(g))
                .unwrap_or(&"")
                .trim()
                .to_owned(),
            dataset: None,
        });
    }
    Ok(out)
}

/// The generic CSV described in the module docs.
pub fn parse_generic(text: &str) -> Result<Vec<TraceJob>, TraceError> {
    let mut lines = text.lines();
    let cols = columns(lines.next().unwrap_or_default());
    let (sub, dur, gpus) = (
        col(&cols, "submit_s")?,
        col(&cols, "duration_s")?,
        col(&cols, "gpus")?,
    );
    let find = |n: &str| cols.iter().position(|c| *c == n);
    let (group, ds, bytes) = (find("group"), find("dataset"), find("dataset_bytes"));
    let mut out = Vec::new();
    for (i, l) in lines.enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        let line = i + 2;
        let f: Vec<&str> = l.split(',').map(str::trim).collect();
        let dataset = match (ds.and_then(|c| f.get(c)), bytes) {
            (Some(name), Some(b)) if !name.is_empty() => Some((
                (*name).to_owned(),
                num(f.get(b).copied(), line, "dataset_bytes")?,
            )),
            (Some(name), None) if !name.is_empty() => {
                return Err(parse_err(
                    line,
                    format!("dataset {name:?} without dataset_bytes"),
                ))
            }
            _ => None,
        };
        out.push(TraceJob {
            submit_s: num(f.get(sub).copied(), line, "submit_s")?,
            duration_s: num(f.get(dur).copied(), line, "duration_s")?,
            gpus: num(f.get(gpus).copied(), line, "gpus")?,
            group: group.and_then(|g| f.get(g)).unwrap_or(&"").to_string(),
            dataset,
        });
    }
    Ok(out)
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
}
