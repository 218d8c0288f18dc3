//! Evaluation errors: each names what was wrong (which file, which sample, which shape).

/// Why an evaluation could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The dataset, model or options do not fit together; the message says how.
    #[error("{0}")]
    Input(String),
    /// A file could not be read.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The ONNX model could not be loaded or run.
    #[error("model: {0}")]
    Model(String),
}

impl EvalError {
    pub fn input(msg: impl Into<String>) -> Self {
        EvalError::Input(msg.into())
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        EvalError::Io {
            context: context.into(),
            source,
        }
    }

    pub fn model(msg: impl std::fmt::Display) -> Self {
        EvalError::Model(msg.to_string())
    }
}

pub type Result<T> = std::result::Result<T, EvalError>;
