//! Task metrics, accumulated one prediction at a time.

use std::collections::BTreeMap;

/// Accuracy, top-5 accuracy, macro-F1 and the confusion matrix of a classifier.
#[derive(Debug, Clone)]
pub struct Classification {
    classes: usize,
    /// Row = true class, column = predicted class.
    confusion: Vec<u64>,
    n: u64,
    top5: u64,
}

impl Classification {
    pub fn new(classes: usize) -> Self {
        Classification {
            classes,
            confusion: vec![0; classes * classes],
            n: 0,
            top5: 0,
        }
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Records one prediction given as scores per class (logits or probabilities).
    pub fn add(&mut self, scores: &[f32], target: usize) {
        debug_assert!(target < self.classes && scores.len() <= self.classes);
        let predicted = argmax(scores);
        let above = scores
            .iter()
            .filter(|s| **s > scores.get(target).copied().unwrap_or(f32::NEG_INFINITY))
            .count();
        if above < 5 {
            self.top5 += 1;
        }
        self.confusion[target * self.classes + predicted] += 1;
        self.n += 1;
    }

    pub fn count(&self) -> u64 {
        self.n
    }

    pub fn correct(&self) -> u64 {
        (0..self.classes)
            .map(|c| self.confusion[c * self.classes + c])
            .sum()
    }

    /// The confusion matrix, row = true class.
    pub fn confusion(&self) -> Vec<Vec<u64>> {
        self.confusion
            .chunks(self.classes.max(1))
            .map(<[u64]>::to_vec)
            .collect()
    }

    /// Macro-F1 over the classes present in the targets or the predictions (as scikit-learn).
    pub fn macro_f1(&self) -> f64 {
        let k = self.classes;
        let mut sum = 0.0;
        let mut present = 0;
        for c in 0..k {
            let tp = self.confusion[c * k + c] as f64;
            let row: u64 = (0..k).map(|j| self.confusion[c * k + j]).sum();
            let col: u64 = (0..k).map(|i| self.confusion[i * k + c]).sum();
            if row == 0 && col == 0 {
                continue;
            }
            present += 1;
            let (fp, fne) = (col as f64 - tp, row as f64 - tp);
            sum += 2.0 * tp / (2.0 * tp + fp + fne);
        }
        if present == 0 {
            0.0
        } else {
            sum / present as f64
        }
    }

    pub fn metrics(&self) -> BTreeMap<String, f64> {
        let n = self.n.max(1) as f64;
        let mut m = BTreeMap::new();
        m.insert("accuracy".into(), self.correct() as f64 / n);
        m.insert("correct".into(), self.correct() as f64);
        m.insert("macro_f1".into(), self.macro_f1());
        if self.classes >= 5 {
            m.insert("top5_accuracy".into(), self.top5 as f64 / n);
        }
        m
    }
}

/// The index of the highest score (the first on ties).
pub fn argmax(scores: &[f32]) -> usize {
    let mut best = 0;
    for (i, s) in scores.iter().enumerate() {
        if *s > scores[best] {
            best = i;
        }
    }
    best
}

/// RMSE, MAE and R² of a regressor, from running sums.
#[derive(Debug, Clone, Default)]
pub struct Regression {
    n: u64,
    sq: f64,
    abs: f64,
    sum_y: f64,
    sum_y2: f64,
}

impl Regression {
    pub fn add(&mut self, predicted: f64, target: f64) {
        let e = predicted - target;
        self.n += 1;
        self.sq += e * e;
        self.abs += e.abs();
        self.sum_y += target;
        self.sum_y2 += target * target;
    }

    pub fn count(&self) -> u64 {
        self.n
    }

    pub fn metrics(&self) -> BTreeMap<String, f64> {
        let n = self.n.max(1) as f64;
        let ss_tot = self.sum_y2 - self.sum_y * self.sum_y / n;
        let mut m = BTreeMap::new();
        m.insert("rmse".into(), (self.sq / n).sqrt());
        m.insert("mae".into(), self.abs / n);
        m.insert(
            "r2".into(),
            if ss_tot > 0.0 {
                1.0 - self.sq / ss_tot
            } else {
                0.0
            },
        );
        m
    }
}

/// The `q`-quantile (0..=1) of sorted values, by nearest rank.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_by_hand() {
        // Targets 0,0,1,2 ; predictions 0,1,1,2.
        let mut c = Classification::new(3);
        c.add(&[0.9, 0.1, 0.0], 0);
        c.add(&[0.2, 0.7, 0.1], 0);
        c.add(&[0.1, 0.8, 0.1], 1);
        c.add(&[0.0, 0.1, 0.9], 2);
        let m = c.metrics();
        assert_eq!(m["accuracy"], 0.75);
        assert_eq!(m["correct"], 3.0);
        // F1: class 0 = 2·1/(2+0+1) = 2/3; class 1 = 2/(2+1+0) = 2/3; class 2 = 1.
        assert!((m["macro_f1"] - (2.0 / 3.0 + 2.0 / 3.0 + 1.0) / 3.0).abs() < 1e-12);
        assert!(!m.contains_key("top5_accuracy"));
        assert_eq!(
            c.confusion(),
            vec![vec![1, 1, 0], vec![0, 1, 0], vec![0, 0, 1]]
        );
    }

    #[test]
    fn top5_counts_the_target_among_the_five_best() {
        let mut c = Classification::new(7);
        // Target 6 is the 5th best: counted.
        c.add(&[7.0, 6.0, 5.0, 4.0, 0.0, 0.0, 3.0], 6);
        // Target 6 is the 6th best: not counted.
        c.add(&[7.0, 6.0, 5.0, 4.0, 3.5, 0.0, 3.0], 6);
        assert_eq!(c.metrics()["top5_accuracy"], 0.5);
        assert_eq!(c.metrics()["accuracy"], 0.0);
    }

    #[test]
    fn regression_by_hand() {
        let mut r = Regression::default();
        for (p, t) in [(1.0, 1.0), (2.0, 3.0), (3.0, 5.0)] {
            r.add(p, t);
        }
        let m = r.metrics();
        // Errors 0, -1, -2: MSE 5/3, MAE 1; targets mean 3, SS_tot 8.
        assert!((m["rmse"] - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!((m["mae"] - 1.0).abs() < 1e-12);
        assert!((m["r2"] - (1.0 - 5.0 / 8.0)).abs() < 1e-12);
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.95), 95.0);
        assert_eq!(quantile(&[3.0], 0.95), 3.0);
    }
}
