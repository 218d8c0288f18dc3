//! The results part of the store suite: verified results, boards, self-reported claims and
//! dataset summaries, on every backend.

use std::collections::BTreeMap;

use modelyard_core::model_index::SelfReported;
use modelyard_core::{RepoId, RepoKind};

use crate::{NewRepo, NewResult, ResultFilter, Store, TreeEntry};

async fn repo(store: &Store, kind: RepoKind, owner: &str, name: &str, private: bool) -> String {
    let uid = format!("uid-{}-{owner}-{name}", kind.as_str());
    store
        .create_repo(&NewRepo {
            uid: uid.clone(),
            kind,
            id: RepoId::new(owner, name).unwrap(),
            private,
            owner: owner.into(),
            initial_commit: format!(
                "{:0>40x}",
                uid.bytes()
                    .fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b))
                        .wrapping_mul(0x100000001b3))
            ),
            initial_files: vec![TreeEntry {
                path: ".gitattributes".into(),
                sha256: "a".repeat(64),
                size: 3,
                git_oid: "a".repeat(40),
                lfs: false,
            }],
        })
        .await
        .unwrap();
    uid
}

fn result<'a>(
    job: i64,
    model: &'a str,
    dataset: &'a str,
    metrics: &'a BTreeMap<String, f64>,
    report: &'a serde_json::Value,
) -> NewResult<'a> {
    NewResult {
        job_id: job,
        model_repo: model,
        model_commit: "c1",
        model_sha256: "s",
        dataset_repo: dataset,
        dataset_commit: "d1",
        split: "test",
        task: "image-classification",
        samples: 10,
        metrics,
        latency_p50_ms: 0.5,
        latency_p95_ms: 0.75,
        throughput: 2000.0,
        hardware: "cpu",
        report,
    }
}

pub(crate) async fn results_suite(store: Store) {
    store.create_user("alice", None, false).await.unwrap();
    let m1 = repo(&store, RepoKind::Model, "alice", "m1", false).await;
    let m2 = repo(&store, RepoKind::Model, "alice", "m2", true).await;
    let ds = repo(&store, RepoKind::Dataset, "alice", "digits", false).await;
    let acc = |v: f64| BTreeMap::from([("accuracy".to_string(), v)]);
    let (a1, a2) = (acc(0.9), acc(0.95));
    let report = serde_json::json!({"samples": 10});
    assert!(store
        .add_result(&result(1, &m1, &ds, &a1, &report))
        .await
        .unwrap());
    assert!(
        !store
            .add_result(&result(1, &m1, &ds, &a1, &report))
            .await
            .unwrap(),
        "a repeated report of the same job stores nothing"
    );
    assert!(store
        .add_result(&result(2, &m2, &ds, &a2, &report))
        .await
        .unwrap());

    let all = store.results(&ResultFilter::default()).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].job_id, 2, "newest first");
    assert_eq!(all[0].model_id.to_string(), "alice/m2");
    assert!(all[0].model_private && !all[1].model_private);
    assert_eq!(all[1].metrics["accuracy"], 0.9);
    assert_eq!(all[1].latency_p95_ms, 0.75);
    let one = store
        .results(&ResultFilter {
            model_repo: Some(m1.clone()),
            model_commit: Some("c1".into()),
            dataset_commit: Some("d1".into()),
            split: Some("test".into()),
            task: Some("image-classification".into()),
            ..ResultFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    let by_id = store
        .results(&ResultFilter {
            id: Some(one[0].id),
            ..ResultFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(by_id[0].job_id, 1);
    assert_eq!(
        store.result_report(one[0].id).await.unwrap().unwrap(),
        report
    );
    assert!(store
        .results(&ResultFilter {
            split: Some("train".into()),
            ..ResultFilter::default()
        })
        .await
        .unwrap()
        .is_empty());

    let boards = store.boards().await.unwrap();
    assert_eq!(boards.len(), 1);
    assert_eq!(boards[0].dataset_id.to_string(), "alice/digits");
    assert_eq!((boards[0].results, boards[0].models), (2, 2));

    let claim = |v: f64| SelfReported {
        dataset: "alice/digits".into(),
        split: "test".into(),
        task: "image-classification".into(),
        metric: "accuracy".into(),
        value: v,
    };
    store
        .set_self_reported(&m1, "c1", &[claim(0.99), claim(0.98)])
        .await
        .unwrap();
    store
        .set_self_reported(&m1, "c2", &[claim(0.97)])
        .await
        .unwrap();
    let claims = store
        .self_reported(Some("alice/digits"), None)
        .await
        .unwrap();
    assert_eq!(claims.len(), 1, "a new card replaces the old claims");
    assert_eq!(
        (claims[0].model_commit.as_str(), claims[0].claim.value),
        ("c2", 0.97)
    );
    assert_eq!(store.self_reported(None, Some(&m2)).await.unwrap().len(), 0);

    assert!(store.dataset_summary("d1").await.unwrap().is_none());
    let summary = serde_json::json!({"splits": []});
    store.put_dataset_summary("d1", Ok(&summary)).await.unwrap();
    store.put_dataset_summary("d1", Err("late")).await.unwrap();
    let row = store.dataset_summary("d1").await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.summary), ("ok", Some(summary)));
    store
        .put_dataset_summary("d2", Err("too big"))
        .await
        .unwrap();
    let row = store.dataset_summary("d2").await.unwrap().unwrap();
    assert_eq!(
        (row.status.as_str(), row.error.as_deref()),
        ("error", Some("too big"))
    );
}

#[tokio::test]
async fn sqlite_passes_the_results_suite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    results_suite(Store::connect(&url).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_passes_the_results_suite() {
    let Some(server) = crate::testing::postgres_url("postgres_passes_the_results_suite") else {
        return;
    };
    let db = crate::testing::TestDatabase::create(&server).await;
    results_suite(Store::connect(&db.url).await.unwrap()).await;
    db.drop_database().await;
}
