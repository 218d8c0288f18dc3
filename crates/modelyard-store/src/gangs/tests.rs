//! Multi-node jobs in the store, on SQLite and on PostgreSQL.

use super::{GangPart, GangStatus};
use crate::Store;

const PORTS: std::ops::Range<u16> = 29_400..29_402;

fn part(node: &str, gpus: &[u32]) -> GangPart {
    GangPart {
        node_id: node.into(),
        gpus: gpus.to_vec(),
        resources: format!(r#"{{"cpus":1,"memory_mb":0,"gpus":{}}}"#, gpus.len()),
    }
}

async fn gang_suite(store: Store) {
    let job = store.create_job("alice", "command", "{}", 3).await.unwrap();
    let parts = [part("n0", &[0, 1]), part("n1", &[0, 1])];
    let attempt = store
        .assign_gang(job.id, &parts, PORTS)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(attempt, 1);
    assert!(
        store
            .assign_gang(job.id, &parts, PORTS)
            .await
            .unwrap()
            .is_none(),
        "only a queued job is assigned"
    );
    let row = store.job(job.id).await.unwrap().unwrap();
    assert_eq!(
        (row.node_id.as_deref(), row.gpus.clone()),
        (Some("n0"), vec![0, 1])
    );
    // Each node sees the job and only its attempt is current there.
    for n in ["n0", "n1"] {
        assert_eq!(store.jobs_on_node(n).await.unwrap().len(), 1, "{n}");
        assert!(store.attempt_is_current(job.id, attempt, n).await.unwrap());
    }
    assert!(store.jobs_on_node("n2").await.unwrap().is_empty());
    assert!(!store
        .attempt_is_current(job.id, attempt, "n2")
        .await
        .unwrap());
    assert_eq!(store.active_ranks().await.unwrap().len(), 2);

    // Rank 1 starts first: only its part runs; rank 0 starting runs the job.
    assert!(store.start_attempt(job.id, attempt, "n1").await.unwrap());
    assert_eq!(store.job(job.id).await.unwrap().unwrap().state, "assigned");
    assert!(store.start_attempt(job.id, attempt, "n0").await.unwrap());
    assert_eq!(store.job(job.id).await.unwrap().unwrap().state, "running");
    // What the utilisation chart reads: the running job's parts on both nodes.
    let chart: Vec<(i64, String)> = store
        .ranks_of_jobs_since(i64::MAX, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.job_id, r.node_id))
        .collect();
    assert_eq!(chart, [(job.id, "n0".into()), (job.id, "n1".into())]);
    // What each node's heartbeat reads: every rank of the jobs it takes part in.
    for n in ["n0", "n1"] {
        let ranks = store.gang_ranks_touching(n).await.unwrap();
        assert_eq!(
            ranks,
            store.gang_ranks(job.id, attempt).await.unwrap(),
            "{n}"
        );
    }
    assert!(store.gang_ranks_touching("n2").await.unwrap().is_empty());

    // Rank 0 done: waiting for rank 1; rank 1 done: all succeeded.
    let fin = |node: &'static str, state: &'static str| {
        let store = &store;
        async move {
            store
                .finish_rank(job.id, attempt, node, state, Some(0), "exit code 0")
                .await
                .unwrap()
        }
    };
    assert_eq!(fin("n0", "succeeded").await, Some(GangStatus::Waiting));
    assert_eq!(fin("n0", "succeeded").await, None, "a rank finishes once");
    assert_eq!(fin("n1", "succeeded").await, Some(GangStatus::Succeeded));

    // A lost node takes the whole job back to the queue; the old attempt's ranks go stale.
    let job2 = store.create_job("alice", "command", "{}", 3).await.unwrap();
    let a2 = store
        .assign_gang(job2.id, &parts, PORTS)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.requeue_jobs_of("n1", "lost").await.unwrap(), 1);
    let row = store.job(job2.id).await.unwrap().unwrap();
    assert_eq!((row.state.as_str(), row.node_id), ("queued", None));
    assert!(!store.attempt_is_current(job2.id, a2, "n0").await.unwrap());
    assert!(!store.start_attempt(job2.id, a2, "n1").await.unwrap());
    assert_eq!(
        store
            .finish_rank(job2.id, a2, "n0", "failed", None, "x")
            .await
            .unwrap(),
        None
    );
    assert!(store.active_ranks().await.unwrap().is_empty());
    // Assigned again: a new attempt with its own ranks; one rank failing ends it.
    let a3 = store
        .assign_gang(job2.id, &[part("n2", &[0]), part("n0", &[1])], PORTS)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a3, a2 + 1);
    assert_eq!(store.gang_ranks(job2.id, a3).await.unwrap().len(), 2);
    let failed = store
        .finish_rank(job2.id, a3, "n0", "failed", Some(3), "exit code 3")
        .await
        .unwrap();
    match failed {
        Some(GangStatus::Failed(r)) => assert_eq!((r.rank, r.exit_code), (1, Some(3))),
        other => panic!("{other:?}"),
    }
    // Gangs led from one node listen on ports of their own; a finished gang's port is free
    // again; with every port taken the last one is shared.
    let port = |job: i64| {
        let store = &store;
        async move {
            let row = store.job(job).await.unwrap().unwrap();
            let ranks = store.gang_ranks(job, row.attempt).await.unwrap();
            assert!(ranks.iter().all(|r| r.port == ranks[0].port), "{ranks:?}");
            ranks[0].port
        }
    };
    let mut led = Vec::new();
    for _ in 0..3 {
        let j = store.create_job("alice", "command", "{}", 3).await.unwrap();
        store
            .assign_gang(j.id, &parts, PORTS)
            .await
            .unwrap()
            .unwrap();
        led.push(j.id);
    }
    assert_eq!(port(led[0]).await, Some(29_400));
    assert_eq!(port(led[1]).await, Some(29_401));
    assert_eq!(port(led[2]).await, Some(29_401), "all taken: the last one");
    let elsewhere = store.create_job("alice", "command", "{}", 3).await.unwrap();
    store
        .assign_gang(elsewhere.id, &[part("n1", &[2]), part("n0", &[2])], PORTS)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        port(elsewhere.id).await,
        Some(29_400),
        "led from another node"
    );
    let row = store.job(led[0]).await.unwrap().unwrap();
    for n in ["n0", "n1"] {
        store
            .finish_rank(led[0], row.attempt, n, "cancelled", None, "cancelled")
            .await
            .unwrap();
    }
    let again = store.create_job("alice", "command", "{}", 3).await.unwrap();
    store
        .assign_gang(again.id, &parts, PORTS)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        port(again.id).await,
        Some(29_400),
        "freed by the finished gang"
    );

    // A single-node job has no ranks.
    let single = store.create_job("alice", "command", "{}", 3).await.unwrap();
    store
        .assign_jobs(&[(single.id, "n3".into(), vec![])])
        .await
        .unwrap();
    assert!(store.gang_ranks(single.id, 1).await.unwrap().is_empty());
    assert_eq!(
        store
            .finish_rank(single.id, 1, "n3", "succeeded", Some(0), "")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn gangs_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    gang_suite(Store::connect(&url).await.unwrap()).await;
}

#[tokio::test]
async fn gangs_on_postgres() {
    let Some(server) = crate::testing::postgres_url("gangs_on_postgres") else {
        return;
    };
    let db = crate::testing::TestDatabase::create(&server).await;
    gang_suite(Store::connect(&db.url).await.unwrap()).await;
    db.drop_database().await;
}
