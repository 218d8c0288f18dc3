//! Runtime prediction: features of a model, a workload and a node → predicted seconds with a
//! p10–p90 band, from an analytic prior corrected by regression on finished jobs.

pub mod features;
pub mod fit;
pub mod gpus;
pub mod predictor;
pub mod terms;

pub use features::{Features, Node, Structure, Work, Workload};
pub use predictor::{Basis, Observation, Prediction, Predictor};
