//! The model that gives trace jobs datasets, since the Philly trace records none.
//!
//! Teams reuse their own data and share a few public datasets. Each group of the trace (Philly's
//! virtual cluster: one team) owns `per_group` private datasets; besides, `shared` public
//! datasets serve every group. A job picks a public dataset with probability
//! `shared_fraction`, else one of its group's own; within either list the dataset of rank `r`
//! is picked with Zipf weight `1 / r^zipf_s` (the public ranking is one for all; each group's
//! is its own). Sizes are log-normal (median `median_bytes`, spread `sigma`, clamped to
//! `[min_bytes, max_bytes]`), drawn once per dataset. A job whose trace row names a dataset
//! keeps it. Every draw is seeded: a job's dataset depends only on the seed, its group and its
//! position in the trace.

use rand::Rng;

use super::noise;
use super::trace::TraceJob;

#[derive(Debug, Clone)]
pub struct DatasetModel {
    pub shared: usize,
    pub per_group: usize,
    pub shared_fraction: f64,
    pub zipf_s: f64,
    pub median_bytes: f64,
    pub sigma: f64,
    pub min_bytes: u64,
    pub max_bytes: u64,
}

impl Default for DatasetModel {
    /// 20 public datasets taking 30% of jobs, 30 per group, Zipf 1.1, sizes median 20 GB with
    /// σ 1.2 (mean ≈ 41 GB) between 1 GB and 1 TB.
    fn default() -> Self {
        Self {
            shared: 20,
            per_group: 30,
            shared_fraction: 0.3,
            zipf_s: 1.1,
            median_bytes: 20e9,
            sigma: 1.2,
            min_bytes: 1_000_000_000,
            max_bytes: 1_000_000_000_000,
        }
    }
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn zipf_cdf(n: usize, s: f64) -> Vec<f64> {
    let mut acc = 0.0;
    (1..=n.max(1))
        .map(|r| {
            acc += 1.0 / (r as f64).powf(s);
            acc
        })
        .collect()
}

fn draw(cdf: &[f64], rng: &mut impl Rng) -> usize {
    let u = rng.gen::<f64>() * cdf[cdf.len() - 1];
    cdf.partition_point(|&c| c < u).min(cdf.len() - 1)
}

impl DatasetModel {
    /// The size of a dataset, a function of the seed and its name only.
    pub fn size_of(&self, name: &str, seed: u64) -> u64 {
        let mut rng = noise::stream(seed ^ fnv(name), 10);
        let b = self.median_bytes * (self.sigma * noise::normal(&mut rng)).exp();
        (b as u64).clamp(self.min_bytes, self.max_bytes)
    }

    /// `(dataset name, bytes)` for each job.
    pub fn assign(&self, jobs: &[TraceJob], seed: u64) -> Vec<(String, u64)> {
        let shared = zipf_cdf(self.shared, self.zipf_s);
        let own = zipf_cdf(self.per_group, self.zipf_s);
        let mut rng = noise::stream(seed, 11);
        jobs.iter()
            .map(|j| {
                if let Some(d) = &j.dataset {
                    return d.clone();
                }
                let public = self.per_group == 0
                    || (self.shared > 0 && rng.gen_bool(self.shared_fraction.clamp(0.0, 1.0)));
                let name = if public {
                    format!("public-{:02}", draw(&shared, &mut rng))
                } else {
                    format!("{}-{:02}", j.group, draw(&own, &mut rng))
                };
                let size = self.size_of(&name, seed);
                (name, size)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn job(group: &str) -> TraceJob {
        TraceJob {
            submit_s: 0.0,
            duration_s: 1.0,
            gpus: 1,
            group: group.into(),
            dataset: None,
        }
    }

    #[test]
    fn teams_reuse_their_data_and_share_public_sets() {
        let m = DatasetModel::default();
        let jobs: Vec<_> = (0..4000)
            .map(|i| job(if i % 2 == 0 { "a" } else { "b" }))
            .collect();
        let d = m.assign(&jobs, 3);
        assert_eq!(d, m.assign(&jobs, 3), "seeded");
        assert_ne!(d, m.assign(&jobs, 4));
        let public = d.iter().filter(|(n, _)| n.starts_with("public-")).count();
        assert!((1000..1400).contains(&public), "about 30% public: {public}");
        assert!(
            d.iter().step_by(2).all(|(n, _)| !n.starts_with("b-")),
            "a never uses b's"
        );
        let mut sizes = HashMap::new();
        for (n, s) in &d {
            assert_eq!(
                *sizes.entry(n.clone()).or_insert(*s),
                *s,
                "one size per dataset"
            );
            assert!((m.min_bytes..=m.max_bytes).contains(s));
        }
        let mut count = HashMap::new();
        for (n, _) in &d {
            *count.entry(n.clone()).or_insert(0) += 1;
        }
        assert!(
            count.values().max().unwrap() > &200,
            "a few datasets are used heavily"
        );
    }
}
