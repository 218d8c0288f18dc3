//! Start-up hygiene: one worker per directory (an exclusive lock file), and killing the job
//! process groups a crashed worker left behind in its work directory.

use std::fs::File;
use std::path::Path;

use anyhow::Context;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::Signal;

use crate::attempt::PGID_FILE;
use crate::procs::{environ, group_members, signal_group};

/// Takes an exclusive lock on `dir/name`, held until the returned value is dropped.
pub fn lock_dir(dir: &Path, name: &str) -> anyhow::Result<Flock<File>> {
    let path = dir.join(name);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening lock file {}", path.display()))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(lock),
        Err((_, Errno::EWOULDBLOCK)) => anyhow::bail!(
            "{} is in use by another modelyard worker; give each worker its own directory",
            dir.display()
        ),
        Err((_, e)) => Err(e).with_context(|| format!("locking {}", path.display())),
    }
}

/// Kills the process groups recorded in `work_dir/jobs/*/pgid` whose processes still carry
/// that job directory in their environment (so a reused id never hits a stranger).
pub fn reap(work_dir: &Path) {
    let Ok(dirs) = std::fs::read_dir(work_dir.join("jobs")) else {
        return;
    };
    for dir in dirs.flatten() {
        let pgid_file = dir.path().join(PGID_FILE);
        let Ok(text) = std::fs::read_to_string(&pgid_file) else {
            continue;
        };
        if let Ok(pgid) = text.trim().parse::<i32>() {
            let marker = format!("MODELYARD_JOB_DIR={}", dir.path().display());
            let ours = group_members(pgid)
                .iter()
                .any(|p| p.state != 'Z' && environ(p.pid).contains(&marker));
            if ours {
                tracing::warn!(pgid, job.dir = %dir.path().display(),
                    "killing a job left running by a previous worker");
                signal_group(pgid, Signal::SIGKILL);
            }
        }
        let _ = std::fs::remove_file(&pgid_file);
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    use super::*;
    use crate::procs::group_alive;

    fn sleeper(job_dir: &Path) -> std::process::Child {
        Command::new("sleep")
            .arg("100")
            .env("MODELYARD_JOB_DIR", job_dir)
            .process_group(0)
            .spawn()
            .unwrap()
    }

    #[test]
    fn reaps_only_groups_that_carry_their_job_dir() {
        let work = tempfile::tempdir().unwrap();
        let ours = work.path().join("jobs/1-1");
        let other = work.path().join("jobs/2-1");
        std::fs::create_dir_all(&ours).unwrap();
        std::fs::create_dir_all(&other).unwrap();
        let mut left = sleeper(&ours);
        // A stranger whose group id happens to sit in a stale pgid file.
        let mut stranger = sleeper(Path::new("/elsewhere"));
        let pgid = |c: &std::process::Child| i32::try_from(c.id()).unwrap();
        std::fs::write(ours.join(PGID_FILE), pgid(&left).to_string()).unwrap();
        std::fs::write(other.join(PGID_FILE), pgid(&stranger).to_string()).unwrap();

        reap(work.path());
        left.wait().unwrap();
        assert!(!group_alive(pgid(&left)));
        assert!(group_alive(pgid(&stranger)), "a stranger was killed");
        assert!(!ours.join(PGID_FILE).exists() && !other.join(PGID_FILE).exists());
        stranger.kill().unwrap();
        stranger.wait().unwrap();
    }

    #[test]
    fn a_directory_serves_one_worker() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock_dir(dir.path(), "worker.lock").unwrap();
        let err = lock_dir(dir.path(), "worker.lock").unwrap_err();
        assert!(
            err.to_string()
                .contains("in use by another modelyard worker"),
            "{err}"
        );
        drop(held);
        lock_dir(dir.path(), "worker.lock").unwrap();
    }
}
