//! A run's numbers: job completion time percentiles, waiting, makespan, utilization, locality,
//! bytes moved and scheduler time per round; printed as a table, CSV or JSON lines.

use serde::Serialize;

use super::Outcome;

/// One policy's results on one trace and cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub policy: String,
    /// Jobs that finished.
    pub jobs: usize,
    /// Jobs that never ran.
    pub unfinished: usize,
    pub mean_jct_s: f64,
    pub p50_jct_s: f64,
    pub p95_jct_s: f64,
    pub p99_jct_s: f64,
    /// Mean time from submission to start.
    pub mean_wait_s: f64,
    /// From the first submission to the last completion.
    pub makespan_s: f64,
    /// GPU-seconds held by jobs over GPU-seconds available during the makespan.
    pub utilization: f64,
    /// Fraction of jobs whose nodes all held their dataset when they started.
    pub locality: f64,
    pub bytes_moved: u64,
    pub rounds: usize,
    pub round_ms_p50: f64,
    pub round_ms_p99: f64,
}

/// The value at fraction `q` of sorted `v` (nearest rank); 0 for an empty slice.
pub fn percentile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// Completion times in seconds of the finished jobs, sorted.
pub fn jcts(o: &Outcome) -> Vec<f64> {
    let mut v: Vec<f64> = o
        .jobs
        .iter()
        .flatten()
        .map(|j| (j.end_ms - j.submit_ms) as f64 / 1000.0)
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

pub fn summarize(policy: &str, o: &Outcome) -> Summary {
    let done: Vec<_> = o.jobs.iter().flatten().collect();
    let n = done.len().max(1) as f64;
    let jct = jcts(o);
    let first = done.iter().map(|j| j.submit_ms).min().unwrap_or(0);
    let last = done.iter().map(|j| j.end_ms).max().unwrap_or(0);
    let makespan_s = (last - first) as f64 / 1000.0;
    let gpu_s: f64 = done
        .iter()
        .map(|j| f64::from(j.gpus) * (j.end_ms - j.start_ms) as f64 / 1000.0)
        .sum();
    let mut rounds: Vec<f64> = o.round_us.iter().map(|&u| u as f64 / 1000.0).collect();
    rounds.sort_by(f64::total_cmp);
    Summary {
        policy: policy.to_owned(),
        jobs: done.len(),
        unfinished: o.jobs.len() - done.len(),
        mean_jct_s: jct.iter().sum::<f64>() / n,
        p50_jct_s: percentile(&jct, 0.50),
        p95_jct_s: percentile(&jct, 0.95),
        p99_jct_s: percentile(&jct, 0.99),
        mean_wait_s: done
            .iter()
            .map(|j| (j.start_ms - j.submit_ms) as f64 / 1000.0)
            .sum::<f64>()
            / n,
        makespan_s,
        utilization: gpu_s / (o.total_gpus as f64 * makespan_s).max(1e-9),
        locality: done.iter().filter(|j| j.local).count() as f64 / n,
        bytes_moved: done.iter().map(|j| j.bytes_moved).sum(),
        rounds: rounds.len(),
        round_ms_p50: percentile(&rounds, 0.50),
        round_ms_p99: percentile(&rounds, 0.99),
    }
}

/// A fixed-width table, one row per policy.
pub fn table(rows: &[Summary]) -> String {
    let mut s = format!(
        "{:<9} {:>7} {:>11} {:>10} {:>10} {:>10} {:>10} {:>11} {:>6} {:>6} {:>9} {:>8} {:>8}\n",
        "policy",
        "jobs",
        "mean JCT s",
        "p50 s",
        "p95 s",
        "p99 s",
        "mean wait",
        "makespan s",
        "util",
        "local",
        "moved TB",
        "round ms",
        "p99 ms"
    );
    for r in rows {
        s.push_str(&format!(
            "{:<9} {:>7} {:>11.0} {:>10.0} {:>10.0} {:>10.0} {:>10.0} {:>11.0} {:>6.3} {:>6.3} {:>9.2} {:>8.3} {:>8.3}\n",
            r.policy,
            r.jobs,
            r.mean_jct_s,
            r.p50_jct_s,
            r.p95_jct_s,
            r.p99_jct_s,
            r.mean_wait_s,
            r.makespan_s,
            r.utilization,
            r.locality,
            r.bytes_moved as f64 / 1e12,
            r.round_ms_p50,
            r.round_ms_p99,
        ));
    }
    s
}

/// CSV with a header row, one row per policy.
pub fn csv(rows: &[Summary]) -> String {
    let mut s = String::from(
        "policy,jobs,unfinished,mean_jct_s,p50_jct_s,p95_jct_s,p99_jct_s,mean_wait_s,makespan_s,\
         utilization,locality,bytes_moved,rounds,round_ms_p50,round_ms_p99\n",
    );
    for r in rows {
        s.push_str(&format!(
            "{},{},{},{:.1},{:.1},{:.1},{:.1},{:.1},{:.1},{:.4},{:.4},{},{},{:.3},{:.3}\n",
            r.policy,
            r.jobs,
            r.unfinished,
            r.mean_jct_s,
            r.p50_jct_s,
            r.p95_jct_s,
            r.p99_jct_s,
            r.mean_wait_s,
            r.makespan_s,
            r.utilization,
            r.locality,
            r.bytes_moved,
            r.rounds,
            r.round_ms_p50,
            r.round_ms_p99
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
