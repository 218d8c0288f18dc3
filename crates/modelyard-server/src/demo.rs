//! The demo a fresh `modelyard up` publishes: the trained MNIST model, the MNIST test set, and
//! the queued evaluation of one on the other, so the leaderboard fills within a minute.

use bytes::Bytes;
use futures_util::stream;
use modelyard_blob::Expect;
use modelyard_core::{RepoId, RepoKind};
use modelyard_store::{CommitOp, TreeEntry};

use crate::auth::{Auth, Caller};
use crate::error::AppResult;
use crate::master::jobs_api::{submit_job, SubmitBody};
use crate::repo_ops::{self, CommitRequest};
use crate::state::AppState;

const MODEL_CARD: &str = "---
license: mit
library_name: onnx
pipeline_tag: image-classification
tags: [mnist, cnn, onnx, demo]
datasets: [admin/mnist]
model-index:
- name: mnist-8
  results:
  - task: {type: image-classification}
    dataset: {name: MNIST, type: admin/mnist, split: test}
    metrics:
    - {type: accuracy, value: 0.989, name: Accuracy}
---
# mnist-8

A small convolutional network for handwritten digits: Conv → ReLU → MaxPool, twice, then a
dense layer to 10 logits. Input `Input3` is a float32 image of shape [1, 1, 28, 28] with pixels
scaled to [0, 1]; the output is 10 logits.

The accuracy above (98.90% on the 10,000 test images) is self-reported by the model's
publishers.

Provenance: the ONNX Model Zoo \"mnist-8\" model with its trained weights, as redistributed in
webonnx/wonnx (MIT/Apache-2.0).
";

const DATASET_CARD: &str = "---
license: cc-by-sa-3.0
task_categories: [image-classification]
tags: [mnist, images, demo]
pretty_name: MNIST test split
configs:
- config_name: default
  data_files:
  - split: test
    path: [t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz]
label_names: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']
---
# MNIST (test split)

10,000 handwritten digits, 28×28 grey-scale, in the original IDX format:
`t10k-images-idx3-ubyte.gz` (images) and `t10k-labels-idx1-ubyte.gz` (labels 0–9).

MNIST is by Yann LeCun, Corinna Cortes and Christopher Burges, CC BY-SA 3.0; these files come
from unixpickle/mnistlite and match the canonical ones.
";

async fn lfs(state: &AppState, path: &str, content: &'static [u8]) -> AppResult<TreeEntry> {
    let stored = state
        .blobs
        .put(
            stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(content))]),
            Expect::default(),
        )
        .await?;
    state
        .store
        .record_blob(stored.sha256.as_str(), stored.size as i64)
        .await?;
    Ok(repo_ops::lfs_entry(
        path,
        stored.sha256.as_str(),
        stored.size as i64,
    ))
}

async fn publish(
    state: &AppState,
    kind: RepoKind,
    name: &str,
    files: Vec<TreeEntry>,
    title: &str,
) -> AppResult<()> {
    let id = RepoId::new("admin", name)?;
    let repo = repo_ops::create_repo(state, kind, &id, false, "admin").await?;
    repo_ops::commit(
        state,
        &repo,
        CommitRequest {
            branch: "main".into(),
            expected_parent: None,
            author: "admin".into(),
            title: title.into(),
            message: String::new(),
            ops: files.into_iter().map(CommitOp::Put).collect(),
        },
    )
    .await?;
    Ok(())
}

/// Publishes `admin/mnist-8` and the dataset `admin/mnist`.
pub async fn seed(state: &AppState) -> AppResult<()> {
    let model = vec![
        repo_ops::store_inline(state, "README.md", MODEL_CARD.as_bytes().to_vec()).await?,
        lfs(
            state,
            "mnist-8.onnx",
            include_bytes!("../../../fixtures/mnist/mnist-8.onnx"),
        )
        .await?,
    ];
    publish(
        state,
        RepoKind::Model,
        "mnist-8",
        model,
        "Add the trained mnist-8 model",
    )
    .await?;
    let dataset = vec![
        repo_ops::store_inline(state, "README.md", DATASET_CARD.as_bytes().to_vec()).await?,
        lfs(
            state,
            "t10k-images-idx3-ubyte.gz",
            include_bytes!("../../../fixtures/mnist/t10k-images-idx3-ubyte.gz"),
        )
        .await?,
        lfs(
            state,
            "t10k-labels-idx1-ubyte.gz",
            include_bytes!("../../../fixtures/mnist/t10k-labels-idx1-ubyte.gz"),
        )
        .await?,
    ];
    publish(
        state,
        RepoKind::Dataset,
        "mnist",
        dataset,
        "Add the MNIST test split",
    )
    .await?;
    let admin = Auth(Some(Caller {
        name: "admin".into(),
        is_admin: true,
        can_write: true,
    }));
    let job = submit_job(
        state,
        &admin,
        &SubmitBody {
            kind: Some("evaluate".into()),
            model: Some("admin/mnist-8".into()),
            dataset: Some("admin/mnist".into()),
            eval: Some(serde_json::json!({"task": "image-classification", "split": "test"})),
            ..SubmitBody::default()
        },
    )
    .await?;
    tracing::info!(
        model = "admin/mnist-8",
        dataset = "admin/mnist",
        job.id = job.id,
        "published the demo repositories and queued their evaluation"
    );
    Ok(())
}
