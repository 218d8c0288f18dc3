//! The policies behind [`crate::Policy`], and choosing one by name.

pub mod delay;
pub mod fifo;
pub mod ga;
mod genetic;
pub mod mct;
pub mod sjf;

use std::fmt;
use std::str::FromStr;

use crate::fit::{self, Shape};
use crate::{NodeView, PendingJob, Placement, Policy};

/// The policies by name, as the CLI and the master's configuration spell them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    Fifo,
    Sjf,
    Mct,
    Ga,
    GaDelay,
}

impl PolicyKind {
    pub const ALL: [PolicyKind; 5] = [Self::Fifo, Self::Sjf, Self::Mct, Self::Ga, Self::GaDelay];

    pub fn name(self) -> &'static str {
        match self {
            Self::Fifo => "fifo",
            Self::Sjf => "sjf",
            Self::Mct => "mct",
            Self::Ga => "ga",
            Self::GaDelay => "ga-delay",
        }
    }

    pub fn build(self, opts: &PolicyOptions) -> Box<dyn Policy + Send> {
        match self {
            Self::Fifo => Box::new(fifo::Fifo),
            Self::Sjf => Box::new(sjf::Sjf),
            Self::Mct => Box::new(mct::Mct::default()),
            Self::Ga => Box::new(ga::Ga::new(opts.ga.clone(), None)),
            Self::GaDelay => Box::new(ga::Ga::new(opts.ga.clone(), Some(opts.delay))),
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PolicyKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown policy {s:?} (fifo, sjf, mct, ga, ga-delay)"))
    }
}

/// Settings of the policies that have any.
#[derive(Debug, Clone, Default)]
pub struct PolicyOptions {
    pub ga: ga::GaConfig,
    pub delay: delay::DelayConfig,
}

/// Places jobs in the given order where they fit now (best fit). With `hol_blocking`, the first
/// job that does not fit now but could run later stops the round (strict FIFO); without, it is
/// skipped. Jobs that can never run on these nodes are always skipped.
pub(crate) fn greedy_now<'a>(
    order: impl IntoIterator<Item = &'a PendingJob>,
    nodes: &[NodeView],
    hol_blocking: bool,
) -> Vec<Placement> {
    let mut free: Vec<_> = nodes.iter().map(|n| n.free).collect();
    let mut free_gpus: u32 = free.iter().map(|f| f.gpus).sum();
    let mut out = Vec::new();
    for job in order {
        if !hol_blocking && job.resources.gpus > free_gpus {
            continue;
        }
        let shape = fit::shape(job, nodes);
        match fit::place_now(job, nodes, &mut free, shape, None) {
            Some(p) => {
                free_gpus -= job.resources.gpus;
                out.push(p);
            }
            None if hol_blocking && shape != Shape::Never => break,
            None => {}
        }
    }
    out
}
