//! Non-negative ridge regression on relative error, pulled towards the prior coefficients:
//! minimise `Σᵢ (x·c − yᵢ)² / yᵢ² + Σₖ λₖ sₖ (cₖ − pₖ)²` over `c ≥ 0`, where `sₖ` is the mean
//! weighted square of term `k` (so λₖ counts in observations; the per-step overhead terms
//! may have a strength of their own, `DISPATCH_BELIEF`). Solved exactly on the normal
//! equations, by trying every set of free terms (thirteen unknowns: 8192 tiny systems).

use crate::terms::{HELD_ON_CPU, K};

/// Ridge strength, in observations' worth of belief in the prior. The penalty grows with the
/// square of how wrong the prior is, so it is kept small: it settles directions the data leave
/// open (collinear terms, too few jobs) without holding on to a prior the data contradict. On
/// the bench data 0.01 and 0.001 score alike, 0.1 slightly worse and 2 much worse.
pub const LAMBDA: f64 = 0.01;

/// Ridge strength on the per-op dispatch coefficients of CPU nodes: a hundred observations'
/// worth. Dispatch cost scales with the number of ops per batch, which also grows with a
/// network's work, so on a handful of architectures the fit can trade one for the other
/// freely; left loose on the live runs, it explained DenseNet's slowness by 60 µs per op and
/// then predicted a tiny MNIST model four times too slow. A compiled CPU plan's per-op cost is
/// known to be small, so it is held there. A GPU's is not (a kernel launch costs what the host
/// and the framework make it: the H100 measured here launches faster than the 2020 hosts of the
/// published runs), so GPU fits learn it with the other terms (`LAMBDA`).
pub const DISPATCH_BELIEF: f64 = 100.0;

/// The weighted normal equations of a set of observations.
#[derive(Debug, Clone)]
pub struct Gram {
    a: [[f64; K]; K],
    b: [f64; K],
    n: usize,
}

impl Default for Gram {
    fn default() -> Self {
        Gram {
            a: [[0.0; K]; K],
            b: [0.0; K],
            n: 0,
        }
    }
}

impl Gram {
    /// Adds (`sign` 1.0) or removes (`sign` -1.0) one observation of terms `x` and seconds `y`.
    pub fn update(&mut self, x: &[f64; K], y: f64, sign: f64) {
        let w = 1.0 / (y * y).max(1e-12);
        for i in 0..K {
            for j in 0..K {
                self.a[i][j] += sign * w * x[i] * x[j];
            }
            self.b[i] += sign * w * x[i] * y;
        }
        if sign > 0.0 {
            self.n += 1;
        } else {
            self.n = self.n.saturating_sub(1);
        }
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The coefficients shrunk towards `prior`: the exact minimiser, found by solving the
    /// ridge system on every subset of the exercised terms and keeping the best non-negative
    /// solution (2¹³ small systems; the optimum of a convex QP is one of them).
    /// `dispatch_lambda` is the ridge strength on the per-op dispatch terms (`HELD_ON_CPU`).
    pub fn solve(&self, prior: &[f64; K], lambda: f64, dispatch_lambda: f64) -> [f64; K] {
        let n = self.n.max(1) as f64;
        let pull: Vec<f64> = (0..K)
            .map(|k| {
                let belief = if HELD_ON_CPU.contains(&k) {
                    dispatch_lambda
                } else {
                    lambda
                };
                belief * self.a[k][k] / n
            })
            .collect();
        // Terms no observation exercised keep the prior (they add nothing to the fit).
        let used: Vec<usize> = (0..K).filter(|&k| self.a[k][k] > 1e-300).collect();
        let mut best = *prior;
        for k in &used {
            best[*k] = 0.0;
        }
        let mut best_cost = self.cost(&best, prior, &pull);
        for mask in 1u32..(1 << used.len()) {
            let free: Vec<usize> = (0..used.len())
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| used[i])
                .collect();
            let m = free.len();
            // Terms differ by many orders of magnitude: solve for cₖ·dₖ with dₖ the square root
            // of the diagonal, so that the system is well scaled.
            let d: Vec<f64> = free
                .iter()
                .map(|&i| (self.a[i][i] + pull[i]).sqrt())
                .collect();
            let mut sys = vec![vec![0.0; m + 1]; m];
            for (r, &i) in free.iter().enumerate() {
                for (c, &j) in free.iter().enumerate() {
                    let v = self.a[i][j] + if i == j { pull[i] } else { 0.0 };
                    sys[r][c] = v / (d[r] * d[c]);
                }
                sys[r][m] = (self.b[i] + pull[i] * prior[i]) / d[r];
            }
            let Some(z) = gauss(sys) else { continue };
            let x: Vec<f64> = z.iter().zip(&d).map(|(z, d)| z / d).collect();
            if x.iter().any(|v| *v < 0.0) {
                continue;
            }
            let mut c = *prior;
            for k in &used {
                c[*k] = 0.0;
            }
            for (v, &i) in x.iter().zip(&free) {
                c[i] = *v;
            }
            let cost = self.cost(&c, prior, &pull);
            if cost < best_cost {
                best_cost = cost;
                best = c;
            }
        }
        best
    }

    /// `cᵀAc − 2bᵀc + Σ pullₖ (cₖ − pₖ)²` (the objective up to a constant).
    fn cost(&self, c: &[f64; K], prior: &[f64; K], pull: &[f64]) -> f64 {
        let mut v = 0.0;
        for i in 0..K {
            for j in 0..K {
                v += c[i] * self.a[i][j] * c[j];
            }
            v -= 2.0 * self.b[i] * c[i];
            v += pull[i] * (c[i] - prior[i]).powi(2);
        }
        v
    }
}

/// Solves an augmented `m × (m + 1)` system by Gaussian elimination with partial pivoting;
/// `None` when it is singular.
fn gauss(mut s: Vec<Vec<f64>>) -> Option<Vec<f64>> {
    let m = s.len();
    for col in 0..m {
        let piv = (col..m).max_by(|&a, &b| s[a][col].abs().total_cmp(&s[b][col].abs()))?;
        let scale = s.iter().map(|r| r[col].abs()).fold(0.0, f64::max);
        if s[piv][col].abs() <= 1e-12 * scale.max(1e-300) {
            return None;
        }
        s.swap(col, piv);
        let pivot_row = s[col].clone();
        for (r, row) in s.iter_mut().enumerate() {
            let f = row[col] / pivot_row[col];
            if r != col && f != 0.0 {
                for (v, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                    *v -= f * p;
                }
            }
        }
    }
    Some((0..m).map(|i| s[i][m] / s[i][i]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::terms::dot;

    #[test]
    fn recovers_coefficients_from_exact_data() {
        let truth = [
            0.2, 0.0, 3.0, 1.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        ];
        let mut g = Gram::default();
        for i in 1..40 {
            let v = i as f64;
            let x = [
                1.0,
                0.0,
                v,
                (v * 7.0) % 5.0 + 1.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
            ];
            g.update(&x, dot(&truth, &x), 1.0);
        }
        let c = g.solve(&[1.0; K], 1e-9, 1e-9);
        for k in [0, 2, 3] {
            assert!((c[k] - truth[k]).abs() < 1e-3, "c = {c:?}");
        }
        // Unexercised terms keep the prior.
        assert_eq!(c[4], 1.0);
    }

    #[test]
    fn coefficients_stay_non_negative_and_removal_undoes_adding() {
        let mut g = Gram::default();
        // Time falls as the term grows: the unconstrained fit would go negative.
        for i in 1..10 {
            let x = [
                1.0, 0.0, i as f64, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
            ];
            g.update(&x, 10.0 - i as f64 * 0.5, 1.0);
        }
        let c = g.solve(&[1.0; K], 0.0, 0.0);
        assert!(c.iter().all(|v| *v >= 0.0), "{c:?}");
        let before = g.solve(&[1.0; K], LAMBDA, LAMBDA);
        let x = [
            1.0, 0.0, 50.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        ];
        g.update(&x, 3.0, 1.0);
        g.update(&x, 3.0, -1.0);
        let after = g.solve(&[1.0; K], LAMBDA, LAMBDA);
        for k in 0..K {
            assert!((before[k] - after[k]).abs() < 1e-6);
        }
        assert_eq!(g.len(), 9);
    }

    #[test]
    fn fits_terms_of_very_different_scales() {
        // Three jobs of one small model: seconds-scale, micro and nano-scale terms together.
        let xs = [
            [
                1.0, 2e-6, 0.02, 2e-3, 1e-2, 2e-2, 5e-3, 2e-4, 0.5, 1e-5, 0.0, 0.0, 0.0,
            ],
            [
                1.0, 2e-6, 0.08, 8e-3, 4e-2, 8e-2, 2e-2, 8e-4, 2.0, 4e-5, 0.0, 0.0, 0.0,
            ],
            [
                1.0, 2e-6, 0.20, 2e-2, 1e-1, 2e-1, 5e-2, 2e-3, 5.0, 1e-4, 0.0, 0.0, 0.0,
            ],
        ];
        let ys = [0.193, 0.472, 1.03];
        let mut g = Gram::default();
        for (x, y) in xs.iter().zip(ys) {
            g.update(x, y, 1.0);
        }
        let prior = [
            0.5, 5.0, 2.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0,
        ];
        let c = g.solve(&prior, 1e-9, 1e-9);
        for (x, y) in xs.iter().zip(ys) {
            let p = dot(&c, x);
            assert!((p - y).abs() / y < 0.05, "fitted {p} for {y}: {c:?}");
        }
    }

    #[test]
    fn dispatch_belief_holds_per_op_cost_where_work_explains_the_time() {
        // Networks whose op count grows in step with their work, on a node twice as slow as its
        // calibration: the data cannot tell compute from dispatch. A loose fit splits the time
        // between them; a held one leaves dispatch at its prior and puts it all on compute.
        let mut g = Gram::default();
        for i in 1..6 {
            let v = i as f64;
            let x = [
                1.0,
                0.0,
                v,
                0.0,
                0.0,
                0.1 * v,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
            ];
            g.update(&x, 0.1 + 2.0 * v, 1.0);
        }
        let prior = [
            0.1, 10.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0,
        ];
        let loose = g.solve(&prior, LAMBDA, LAMBDA);
        assert!(loose[5] > 1.0, "loose {loose:?}");
        let held = g.solve(&prior, LAMBDA, DISPATCH_BELIEF);
        assert!(held[5] < 0.05, "held {held:?}");
        assert!((held[2] - 2.0).abs() < 0.05, "held {held:?}");
    }

    #[test]
    fn with_no_data_the_prior_stands() {
        let prior = [
            0.5, 5.0, 2.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0,
        ];
        assert_eq!(Gram::default().solve(&prior, LAMBDA, LAMBDA), prior);
    }
}
