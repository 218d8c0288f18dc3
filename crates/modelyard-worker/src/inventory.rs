//! What this node offers: CPU cores, memory, GPUs (via `nvidia-smi`) and a measured GFLOP/s.

use std::time::{Duration, Instant};

use modelyard_core::protocol::{Gpu, Inventory};
use tokio::process::Command;

/// How long the calibration loop runs.
const CALIBRATION_TIME: Duration = Duration::from_millis(75);
/// Side of the square matrices multiplied by the calibration.
const CALIBRATION_N: usize = 96;
/// Limit for `nvidia-smi`, which can hang on a wedged driver.
const NVIDIA_SMI_TIMEOUT: Duration = Duration::from_secs(10);

/// Detects the inventory of this machine. Never fails: what cannot be read is reported as
/// absent (no GPUs, zero memory) and logged.
pub async fn detect(allow_commands: bool, cache_bytes: u64, gflops: Option<f64>) -> Inventory {
    let cpus = std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
        .unwrap_or(1);
    let memory_mb = match tokio::fs::read_to_string("/proc/meminfo").await {
        Ok(text) => parse_meminfo_mb(&text).unwrap_or(0),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read /proc/meminfo");
            0
        }
    };
    let hostname = tokio::fs::read_to_string("/proc/sys/kernel/hostname")
        .await
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    let gpus = detect_gpus().await;
    let gflops = match gflops.filter(|g| g.is_finite() && *g > 0.0) {
        Some(declared) => declared,
        None => tokio::task::spawn_blocking(calibrate).await.unwrap_or(0.0),
    };
    Inventory {
        hostname,
        cpus,
        memory_mb,
        gpus,
        gflops,
        allow_commands,
        cache_bytes,
        address: None,
    }
}

/// The local address this machine reaches `server` from (the source address of a route to
/// it; nothing is sent): where peers on the same network can reach this node.
pub fn route_address(server: &str) -> Option<String> {
    let url = reqwest::Url::parse(server).ok()?;
    let host = url
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = url.port_or_known_default()?;
    let any = if host.contains(':') {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    };
    let socket = std::net::UdpSocket::bind(any).ok()?;
    socket.connect((host, port)).ok()?;
    Some(socket.local_addr().ok()?.ip().to_string())
}

/// `MemTotal` of `/proc/meminfo`, in MiB.
pub fn parse_meminfo_mb(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

async fn detect_gpus() -> Vec<Gpu> {
    let run = Command::new("nvidia-smi")
        .args([
            "--query-gpu=index,name,memory.total",
            "--format=csv,noheader,nounits",
        ])
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(NVIDIA_SMI_TIMEOUT, run).await {
        Ok(Ok(out)) if out.status.success() => {
            parse_nvidia_smi(&String::from_utf8_lossy(&out.stdout))
        }
        Ok(Ok(out)) => {
            tracing::warn!(status = %out.status, "nvidia-smi failed; reporting no gpus");
            Vec::new()
        }
        // Not installed: the common case on CPU-only nodes.
        Ok(Err(_)) => Vec::new(),
        Err(_) => {
            tracing::warn!("nvidia-smi timed out; reporting no gpus");
            Vec::new()
        }
    }
}

/// Parses `index, name, memory.total` lines of `nvidia-smi --format=csv,noheader,nounits`.
pub fn parse_nvidia_smi(text: &str) -> Vec<Gpu> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split(',').map(str::trim);
            let index = parts.next()?.parse().ok()?;
            let model = parts.next()?.to_owned();
            let memory_mb = parts.next()?.parse().ok()?;
            Some(Gpu {
                index,
                model,
                memory_mb,
            })
        })
        .collect()
}

/// Multiplies f32 matrices for about `CALIBRATION_TIME` and returns the achieved GFLOP/s.
fn calibrate() -> f64 {
    let n = CALIBRATION_N;
    let a: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32 * 0.5).collect();
    let b: Vec<f32> = (0..n * n).map(|i| (i % 5) as f32 * 0.25).collect();
    let mut c = vec![0.0f32; n * n];
    let start = Instant::now();
    let mut rounds = 0u64;
    while start.elapsed() < CALIBRATION_TIME || rounds == 0 {
        c.iter_mut().for_each(|x| *x = 0.0);
        for i in 0..n {
            let row = &mut c[i * n..(i + 1) * n];
            for k in 0..n {
                let aik = a[i * n + k];
                let bk = &b[k * n..(k + 1) * n];
                for (cj, bj) in row.iter_mut().zip(bk) {
                    *cj += aik * bj;
                }
            }
        }
        rounds += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    // Keep the result observable so the loop is not optimized away.
    std::hint::black_box(&c);
    let flops = 2.0 * (n * n * n) as f64 * rounds as f64;
    flops / secs / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_to_a_loopback_server_starts_on_loopback() {
        assert_eq!(
            route_address("http://127.0.0.1:8080").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(route_address("not a url"), None);
    }

    #[test]
    fn parses_meminfo_and_nvidia_smi() {
        let mem = "MemTotal:       16318480 kB\nMemFree:  1 kB\n";
        assert_eq!(parse_meminfo_mb(mem), Some(15936));
        let smi = "0, NVIDIA H100 80GB HBM3, 81559\n1, NVIDIA A10, 23028\n";
        let gpus = parse_nvidia_smi(smi);
        assert_eq!(gpus.len(), 2);
        assert_eq!(gpus[0].model, "NVIDIA H100 80GB HBM3");
        assert_eq!(gpus[1].index, 1);
        assert_eq!(gpus[1].memory_mb, 23028);
    }

    #[test]
    fn calibration_measures_something() {
        assert!(calibrate() > 0.0);
    }
}
