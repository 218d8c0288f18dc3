//! Process groups: signalling a job's whole tree and finding its live members in `/proc`.

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// Sends `signal` to every process of group `pgid`; a group already gone is not an error.
pub fn signal_group(pgid: i32, signal: Signal) {
    match killpg(Pid::from_raw(pgid), signal) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => tracing::warn!(pgid, signal = %signal, error = %e, "cannot signal process group"),
    }
}

/// Whether group `pgid` still has a process that is not a zombie. (An orphan reparented to an
/// init that does not reap stays a zombie forever; it holds nothing and cannot be killed.)
pub fn group_alive(pgid: i32) -> bool {
    match killpg(Pid::from_raw(pgid), None) {
        Err(Errno::ESRCH) => false,
        _ => group_members(pgid).iter().any(|p| p.state != 'Z'),
    }
}

/// One process seen in `/proc`.
#[derive(Debug, Clone)]
pub struct ProcInfo {
    pub pid: i32,
    pub pgrp: i32,
    pub state: char,
}

/// Every process whose process group is `pgid`.
pub fn group_members(pgid: i32) -> Vec<ProcInfo> {
    all_processes()
        .into_iter()
        .filter(|p| p.pgrp == pgid)
        .collect()
}

/// Every process visible in `/proc` (processes that vanish while being read are skipped).
pub fn all_processes() -> Vec<ProcInfo> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|item| {
            let pid: i32 = item.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(item.path().join("stat")).ok()?;
            parse_stat(pid, &stat)
        })
        .collect()
}

/// Parses `/proc/<pid>/stat`: `pid (comm) state ppid pgrp ...`; `comm` may hold spaces and
/// parentheses, so fields are counted from the last `)`.
fn parse_stat(pid: i32, stat: &str) -> Option<ProcInfo> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some(ProcInfo { pid, pgrp, state })
}

/// The environment of a process, as `KEY=VALUE` strings (empty if unreadable).
pub fn environ(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|raw| {
            raw.split(|&b| b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let p = parse_stat(42, "42 (a b) c)) S 1 40 40 0 -1").unwrap();
        assert_eq!((p.pid, p.state, p.pgrp), (42, 'S', 40));
    }

    #[test]
    fn sees_this_process() {
        let me = i32::try_from(std::process::id()).unwrap();
        assert!(all_processes().iter().any(|p| p.pid == me));
    }
}
