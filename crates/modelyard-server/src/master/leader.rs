//! Runs the scheduler loop on exactly one replica: the one holding the database's leadership
//! for the `scheduler` role. The others retry every second and take over when it goes.

use std::time::Duration;

use crate::state::AppState;

/// How often a standby replica tries to become the scheduler.
const RETRY: Duration = Duration::from_secs(1);

/// Runs until the process ends: the scheduler loop while this replica leads, else standby.
pub async fn run_scheduler(state: AppState) {
    let mut standby_logged = false;
    loop {
        match state.store.try_lead("scheduler").await {
            Ok(Some(mut lead)) => {
                tracing::info!("this replica runs the scheduler");
                standby_logged = false;
                tokio::select! {
                    _ = super::scheduler::run(state.clone()) => {}
                    _ = lead.lost() => {
                        tracing::warn!("lost the scheduler leadership; standing by");
                    }
                }
            }
            Ok(None) => {
                if !standby_logged {
                    tracing::info!("another replica runs the scheduler; standing by");
                    standby_logged = true;
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not try for the scheduler leadership"),
        }
        tokio::time::sleep(RETRY).await;
    }
}
