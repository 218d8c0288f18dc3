//! Domain types of modelyard: repository ids, file paths, revisions and cards, parsed once at the edge.

pub mod card;
pub mod hash;
pub mod job;
pub mod model_index;
pub mod path;
pub mod protocol;
pub mod repo;
pub mod revision;

pub use card::{parse_card, CardData, CardError};
pub use path::RepoPath;
pub use repo::{RepoId, RepoKind, Visibility};
pub use revision::{CommitId, RefName};

/// Why a name, path or revision was refused; the message is shown to users as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValidationError(pub String);

impl ValidationError {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}
