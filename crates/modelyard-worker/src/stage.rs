//! Job directories: `work_dir/jobs/<job_id>-<attempt>/` with read-only `inputs/<role>/<path>`
//! linked from the cache, an `outputs/` folder, a metrics file, and the child's environment.

use std::io;
use std::path::{Path, PathBuf};

use modelyard_core::job::JobInput;
use modelyard_core::protocol::Assignment;
use modelyard_core::RepoPath;

use crate::cache::{set_read_only, Pinned};

/// A prepared job directory.
#[derive(Debug, Clone)]
pub struct JobDir {
    pub root: PathBuf,
    pub inputs: PathBuf,
    pub outputs: PathBuf,
    pub metrics_file: PathBuf,
}

impl JobDir {
    /// The directory of one attempt (not created).
    pub fn for_attempt(work_dir: &Path, job_id: i64, attempt: i64) -> Self {
        let root = work_dir.join("jobs").join(format!("{job_id}-{attempt}"));
        Self {
            inputs: root.join("inputs"),
            outputs: root.join("outputs"),
            metrics_file: root.join("metrics.jsonl"),
            root,
        }
    }

    /// Creates the directory afresh (a leftover of an earlier run of the same attempt is
    /// removed), with `inputs/`, `outputs/` and an empty metrics file.
    pub async fn create(&self) -> io::Result<()> {
        if tokio::fs::try_exists(&self.root).await? {
            remove_tree(&self.root).await?;
        }
        tokio::fs::create_dir_all(&self.inputs).await?;
        tokio::fs::create_dir_all(&self.outputs).await?;
        tokio::fs::File::create(&self.metrics_file).await?;
        Ok(())
    }

    /// Where an input lands: `inputs/<role>/<path>`, refusing names that could escape.
    pub fn input_path(&self, input: &JobInput) -> Result<PathBuf, String> {
        let role = RepoPath::parse(&input.role).map_err(|e| format!("input role: {e}"))?;
        if role.as_str().contains('/') {
            return Err(format!(
                "input role {:?} must be one folder name",
                input.role
            ));
        }
        let path = RepoPath::parse(&input.path).map_err(|e| format!("input path: {e}"))?;
        Ok(self.inputs.join(role.as_str()).join(path.as_str()))
    }

    /// Puts a cached blob at `dest`, read-only: a hard link, or a copy across file systems.
    pub async fn link_input(&self, blob: &Pinned, dest: &Path) -> io::Result<()> {
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        if tokio::fs::hard_link(blob.path(), dest).await.is_err() {
            tokio::fs::copy(blob.path(), dest).await?;
        }
        set_read_only(dest).await
    }

    /// The environment of the job's child process.
    pub fn env(&self, assignment: &Assignment) -> Vec<(String, String)> {
        let gpus: Vec<String> = assignment.gpus.iter().map(u32::to_string).collect();
        let path = |p: &Path| p.to_string_lossy().into_owned();
        let mut env = vec![
            ("MODELYARD_JOB_ID".into(), assignment.job.job_id.to_string()),
            (
                "MODELYARD_ATTEMPT".into(),
                assignment.job.attempt.to_string(),
            ),
            ("MODELYARD_JOB_DIR".into(), path(&self.root)),
            ("MODELYARD_INPUT_DIR".into(), path(&self.inputs)),
            ("MODELYARD_OUTPUT_DIR".into(), path(&self.outputs)),
            ("MODELYARD_METRICS_FILE".into(), path(&self.metrics_file)),
            ("CUDA_VISIBLE_DEVICES".into(), gpus.join(",")),
        ];
        if let Some(g) = &assignment.gang {
            // One process per node, as `torchrun --nnodes` expects; also under the names
            // PyTorch's `env://` initialisation reads.
            for (names, value) in [
                (
                    &["MODELYARD_RANK", "NODE_RANK", "RANK"][..],
                    g.rank.to_string(),
                ),
                (
                    &["MODELYARD_WORLD_SIZE", "NNODES", "WORLD_SIZE"][..],
                    g.world_size.to_string(),
                ),
                (
                    &["MODELYARD_MASTER_ADDR", "MASTER_ADDR"][..],
                    g.master_addr.clone(),
                ),
                (
                    &["MODELYARD_MASTER_PORT", "MASTER_PORT"][..],
                    g.master_port.to_string(),
                ),
            ] {
                env.extend(names.iter().map(|n| ((*n).to_owned(), value.clone())));
            }
        }
        env
    }

    /// Removes the input links once the job is over (outputs and metrics stay).
    pub async fn remove_inputs(&self) -> io::Result<()> {
        remove_tree(&self.inputs).await
    }
}

/// `rm -rf` that also handles the read-only files (and folders a job made read-only).
async fn remove_tree(path: &Path) -> io::Result<()> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        if std::fs::remove_dir_all(&path).is_ok() {
            return Ok(());
        }
        make_writable(&path);
        match std::fs::remove_dir_all(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    })
    .await
    .map_err(io::Error::other)?
}

fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
    if let Ok(items) = std::fs::read_dir(dir) {
        for item in items.flatten() {
            if item.file_type().is_ok_and(|t| t.is_dir()) {
                make_writable(&item.path());
            }
        }
    }
}
