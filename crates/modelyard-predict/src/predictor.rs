//! The predictor: learned coefficients per class (node class × kind of work), refitted as jobs
//! finish, falling back to the fit pooled over the node classes of its kind (CPU or GPU) and
//! then to the analytic prior of that kind.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::features::{Features, Work};
use crate::fit::{Gram, DISPATCH_BELIEF, LAMBDA};
use crate::terms::{dot, prior, terms, K};

/// A class gets coefficients of its own once it has at least as many finished jobs as the
/// terms its jobs exercise (see [`exercised`]).
fn enough_for_a_class(obs: &[([f64; K], f64)]) -> bool {
    obs.len() >= exercised(obs)
}

/// How many terms are non-zero in some of `obs` (a GPU's step times, say, exercise no set-up
/// term): the unknowns a fit on them actually has.
pub fn exercised(obs: &[([f64; K], f64)]) -> usize {
    (0..K)
        .filter(|&k| obs.iter().any(|(x, _)| x[k] != 0.0))
        .count()
}
/// The pooled fit needs this many.
pub const MIN_POOLED_OBSERVATIONS: usize = 3;
/// The band of a prediction nobody has checked: the prior is trusted to a factor of two.
const PRIOR_BAND: (f64, f64) = (0.5, 2.0);
/// Leave-one-out residuals are computed over at most this many of a fit's newest observations.
const BAND_SAMPLE: usize = 300;

/// One finished job: what was known before it ran, and how long it took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub features: Features,
    pub seconds: f64,
}

/// Where a prediction's coefficients came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Basis {
    /// The analytic prior alone.
    Prior,
    /// Fitted on finished jobs of this kind of work on all node classes.
    Pooled,
    /// Fitted on finished jobs of this node class and kind of work.
    Class,
}

/// Predicted seconds with a p10–p90 band.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub seconds: f64,
    pub p10: f64,
    pub p90: f64,
    pub basis: Basis,
    /// Finished jobs behind the coefficients (0 for the prior).
    pub observations: usize,
}

/// Coefficients and the band of their leave-one-out residuals, as ratios actual ÷ predicted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    pub coefficients: [f64; K],
    pub band: (f64, f64),
    pub observations: usize,
}

impl Fit {
    fn prior(gpu: bool) -> Fit {
        Fit {
            coefficients: prior(gpu),
            band: PRIOR_BAND,
            observations: 0,
        }
    }

    /// Fits `obs` (terms, seconds) and measures the band by leaving each of the newest out.
    fn of(obs: &[([f64; K], f64)], gpu: bool) -> Fit {
        let prior = prior(gpu);
        let dispatch = if gpu { LAMBDA } else { DISPATCH_BELIEF };
        let mut g = Gram::default();
        for (x, y) in obs {
            g.update(x, *y, 1.0);
        }
        let coefficients = g.solve(&prior, LAMBDA, dispatch);
        let mut ratios: Vec<f64> = obs
            .iter()
            .rev()
            .take(BAND_SAMPLE)
            .map(|(x, y)| {
                g.update(x, *y, -1.0);
                let c = g.solve(&coefficients, LAMBDA, dispatch);
                g.update(x, *y, 1.0);
                (y / dot(&c, x).max(1e-9)).ln()
            })
            .collect();
        ratios.sort_by(f64::total_cmp);
        let band = if ratios.len() >= 5 {
            let q = |p: f64| ratios[((ratios.len() - 1) as f64 * p).round() as usize].exp();
            (q(0.1).min(1.0), q(0.9).max(1.0))
        } else {
            PRIOR_BAND
        };
        Fit {
            coefficients,
            band,
            observations: obs.len(),
        }
    }

    fn predict(&self, f: &Features, basis: Basis) -> Prediction {
        let seconds = dot(&self.coefficients, &terms(f)).max(1e-3);
        Prediction {
            seconds,
            p10: seconds * self.band.0,
            p90: seconds * self.band.1,
            basis,
            observations: self.observations,
        }
    }
}

/// Observations and the fits made of them.
#[derive(Debug, Clone, Default)]
pub struct Predictor {
    observations: Vec<Observation>,
    classes: BTreeMap<String, Fit>,
    /// Keyed by (GPU node, kind of work).
    pooled: BTreeMap<(bool, Work), Fit>,
}

impl Predictor {
    /// A predictor that knows only the prior.
    pub fn new() -> Predictor {
        Predictor::default()
    }

    /// A predictor fitted on `observations` (oldest first).
    pub fn from_observations(observations: impl IntoIterator<Item = Observation>) -> Predictor {
        let mut p = Predictor {
            observations: observations
                .into_iter()
                .filter(|o| o.seconds.is_finite() && o.seconds > 0.0)
                .collect(),
            ..Predictor::default()
        };
        p.refit_all();
        p
    }

    pub fn observations(&self) -> &[Observation] {
        &self.observations
    }

    /// Learns from one more finished job, refitting its class and its pooled fit.
    pub fn observe(&mut self, obs: Observation) {
        if !(obs.seconds.is_finite() && obs.seconds > 0.0) {
            return;
        }
        let class = obs.features.class();
        let work = obs.features.workload.work;
        let gpu = obs.features.node.is_gpu();
        self.observations.push(obs);
        self.refit(&class, gpu, work);
    }

    fn refit_all(&mut self) {
        let mut keys: Vec<(String, bool, Work)> = self
            .observations
            .iter()
            .map(|o| {
                let f = &o.features;
                (f.class(), f.node.is_gpu(), f.workload.work)
            })
            .collect();
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        keys.dedup_by(|a, b| a.0 == b.0);
        for (class, gpu, work) in keys {
            self.refit(&class, gpu, work);
        }
    }

    fn refit(&mut self, class: &str, gpu: bool, work: Work) {
        let of = |pick: &dyn Fn(&Features) -> bool| -> Vec<([f64; K], f64)> {
            self.observations
                .iter()
                .filter(|o| pick(&o.features))
                .map(|o| (terms(&o.features), o.seconds))
                .collect()
        };
        let mine = of(&|f| f.class() == class);
        let all = of(&|f| f.workload.work == work && f.node.is_gpu() == gpu);
        if enough_for_a_class(&mine) {
            self.classes.insert(class.to_owned(), Fit::of(&mine, gpu));
        }
        if all.len() >= MIN_POOLED_OBSERVATIONS {
            self.pooled.insert((gpu, work), Fit::of(&all, gpu));
        }
    }

    /// The fit a prediction for `f` would use.
    pub fn fit_for(&self, f: &Features) -> (Fit, Basis) {
        if let Some(fit) = self.classes.get(&f.class()) {
            (fit.clone(), Basis::Class)
        } else if let Some(fit) = self.pooled.get(&(f.node.is_gpu(), f.workload.work)) {
            (fit.clone(), Basis::Pooled)
        } else {
            (Fit::prior(f.node.is_gpu()), Basis::Prior)
        }
    }

    pub fn predict(&self, f: &Features) -> Prediction {
        let (fit, basis) = self.fit_for(f);
        fit.predict(f, basis)
    }

    /// What the prior alone predicts.
    pub fn prior(f: &Features) -> Prediction {
        Fit::prior(f.node.is_gpu()).predict(f, Basis::Prior)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{Node, Structure, Workload};

    #[test]
    fn a_class_needs_as_many_jobs_as_the_terms_it_exercises() {
        let mut x = [0.0; K];
        x[2] = 1.0;
        x[6] = 2.0;
        let obs = vec![(x, 1.0), (x, 2.0)];
        assert_eq!(exercised(&obs), 2);
        assert!(enough_for_a_class(&obs));
        assert!(!enough_for_a_class(&obs[..1]));
        x[0] = 1.0;
        assert!(!enough_for_a_class(&[(x, 1.0), (x, 2.0)]));
    }

    fn job(macs: f64, samples: f64, class: &str) -> Features {
        Features {
            structure: Structure {
                macs_per_sample: macs,
                parameters: macs / 100.0,
                parameter_bytes: macs / 25.0,
                weighted_layers: 20.0,
                other_ops: 40.0,
                activation_bytes: 1e6,
                memory_access_bytes: 4e7,
                normalization_work: 0.0,
                input_elements: 3.0 * 224.0 * 224.0,
                im2col_bytes: 0.0,
            },
            workload: Workload::evaluation(samples, 1.0, false),
            node: Node {
                class: class.into(),
                gflops: 20.0,
                memory_gbs: 10.0,
            },
        }
    }

    /// A made-up machine where compute runs at 25% of calibration and start-up takes 0.3 s.
    fn truth(f: &Features) -> f64 {
        0.3 + 4.0 * terms(f)[2]
    }

    #[test]
    fn starts_from_the_prior_and_learns_from_finished_jobs() {
        let mut p = Predictor::new();
        let probe = job(3e9, 50.0, "cpu");
        let before = p.predict(&probe);
        assert_eq!(before.basis, Basis::Prior);
        assert!(before.p10 < before.seconds && before.seconds < before.p90);
        for (i, macs) in [1e8, 5e8, 1e9, 2e9, 4e9, 8e9].iter().enumerate() {
            for samples in [10.0, 40.0] {
                let f = job(*macs, samples + i as f64, "cpu");
                let seconds = truth(&f);
                p.observe(Observation {
                    features: f,
                    seconds,
                });
            }
        }
        let after = p.predict(&probe);
        assert_eq!(after.basis, Basis::Class);
        let err = |pr: &Prediction| (pr.seconds - truth(&probe)).abs() / truth(&probe);
        assert!(err(&after) < 0.1, "learned error {}", err(&after));
        assert!(
            err(&after) < err(&before) / 3.0,
            "prior error {}",
            err(&before)
        );
        // CPU runs teach a GPU nothing; another GPU class borrows the fit pooled over GPUs.
        assert_eq!(p.predict(&job(3e9, 50.0, "h100")).basis, Basis::Prior);
        for macs in [1e8, 1e9, 4e9] {
            let f = job(macs, 20.0, "a100");
            let seconds = truth(&f);
            p.observe(Observation {
                features: f,
                seconds,
            });
        }
        assert_eq!(p.predict(&job(3e9, 50.0, "h100")).basis, Basis::Pooled);
    }

    #[test]
    fn rebuilding_from_stored_observations_gives_the_same_predictions() {
        let obs: Vec<Observation> = (1..20)
            .map(|i| {
                let f = job(1e8 * i as f64, 10.0 * i as f64, "cpu");
                let seconds = truth(&f) * (1.0 + 0.05 * ((i % 3) as f64 - 1.0));
                Observation {
                    features: f,
                    seconds,
                }
            })
            .collect();
        let mut live = Predictor::new();
        for o in obs.clone() {
            live.observe(o);
        }
        let json = serde_json::to_string(live.observations()).unwrap();
        let stored: Vec<Observation> = serde_json::from_str(&json).unwrap();
        let rebuilt = Predictor::from_observations(stored);
        let probe = job(7e8, 33.0, "cpu");
        let (a, b) = (live.predict(&probe), rebuilt.predict(&probe));
        assert!((a.seconds - b.seconds).abs() < 1e-9 * a.seconds);
        assert!((a.p90 - b.p90).abs() < 1e-9 * a.p90);
        assert!(a.p10 <= a.seconds && a.seconds <= a.p90);
    }

    #[test]
    fn ignores_impossible_measurements() {
        let mut p = Predictor::new();
        for s in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            p.observe(Observation {
                features: job(1e9, 1.0, "cpu"),
                seconds: s,
            });
        }
        assert!(p.observations().is_empty());
    }
}
