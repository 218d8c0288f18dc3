//! Seeded random numbers for the simulator and the prediction-error model.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A random stream derived from the run's seed and a purpose, so that adding draws for one
/// purpose never shifts the numbers of another.
pub fn stream(seed: u64, purpose: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(purpose);
    rng
}

/// A standard normal draw (Box–Muller).
pub fn normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>(); // (0, 1]
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Prediction error: `predicted = actual × exp(σ·Z)`, Z standard normal. The error is
/// multiplicative and median-unbiased: half the predictions are high, half low, and with σ = 0.5
/// about two in three fall within ×0.61…×1.65 of the truth.
pub fn predicted(actual: f64, sigma: f64, rng: &mut impl Rng) -> f64 {
    if sigma <= 0.0 {
        actual
    } else {
        actual * (sigma * normal(rng)).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_median_unbiased_and_seeded() {
        let mut rng = stream(7, 1);
        let mut v: Vec<f64> = (0..20_001)
            .map(|_| predicted(100.0, 0.5, &mut rng))
            .collect();
        v.sort_by(f64::total_cmp);
        assert!((v[10_000] - 100.0).abs() < 3.0, "median {}", v[10_000]);
        let a: Vec<f64> = (0..5).map(|_| normal(&mut stream(7, 2))).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]), "same seed, same draw");
        assert_ne!(normal(&mut stream(7, 2)), normal(&mut stream(7, 3)));
    }
}
