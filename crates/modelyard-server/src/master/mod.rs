//! The master: node registry, heartbeats with long-poll, fencing, the job API, and the
//! scheduler loop that places queued jobs with a policy from `modelyard-sched`.

pub mod cache_view;
pub mod cluster_api;
pub mod jobs_api;
pub mod leader;
pub mod outputs;
pub mod scheduler;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// Timing of the cluster protocol.
#[derive(Debug, Clone, Copy)]
pub struct ClusterTiming {
    /// A node silent this long is lost and its jobs go back to the queue.
    pub lease: Duration,
    /// The longest a heartbeat waits for news (well under the lease).
    pub poll: Duration,
}

impl Default for ClusterTiming {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(15),
            poll: Duration::from_secs(5),
        }
    }
}

/// In-memory wake-ups for the scheduler and for nodes waiting in a long poll. The database
/// stays the source of truth; these only cut latency.
#[derive(Default)]
pub struct Master {
    pub timing: ClusterTiming,
    sched: Notify,
    nodes: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Master {
    pub fn new(timing: ClusterTiming) -> Self {
        Self {
            timing,
            ..Default::default()
        }
    }

    /// Asks the scheduler loop to run a round now.
    pub fn wake_scheduler(&self) {
        self.sched.notify_one();
    }

    pub async fn scheduler_woken(&self) {
        self.sched.notified().await
    }

    /// The wake-up of one node's long poll.
    pub fn node_notify(&self, node: &str) -> Arc<Notify> {
        self.nodes
            .lock()
            .expect("lock is never poisoned")
            .entry(node.to_owned())
            .or_default()
            .clone()
    }

    pub fn wake_node(&self, node: &str) {
        self.node_notify(node).notify_waiters();
    }
}

/// The cluster join token, created with the database.
pub async fn join_token(
    store: &modelyard_store::Store,
) -> Result<String, modelyard_store::StoreError> {
    let fresh: String = {
        use rand::Rng;
        rand::thread_rng()
            .sample_iter(&rand::distributions::Alphanumeric)
            .take(32)
            .map(char::from)
            .collect()
    };
    store
        .setting_or_insert("join_token", &format!("myj_{fresh}"))
        .await
}
