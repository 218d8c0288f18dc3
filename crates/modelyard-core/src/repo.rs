//! Repository identity: kind (model or dataset), `namespace/name` ids and visibility.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// What a repository holds; decides its URL prefix (`/datasets/...`) and API plural.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RepoKind {
    Model,
    Dataset,
}

impl RepoKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RepoKind::Model => "model",
            RepoKind::Dataset => "dataset",
        }
    }

    /// The plural used in API paths: `/api/models/...`, `/api/datasets/...`.
    pub fn plural(self) -> &'static str {
        match self {
            RepoKind::Model => "models",
            RepoKind::Dataset => "datasets",
        }
    }

    /// The prefix of web and resolve URLs: `""` for models, `"datasets/"` for datasets.
    pub fn url_prefix(self) -> &'static str {
        match self {
            RepoKind::Model => "",
            RepoKind::Dataset => "datasets/",
        }
    }

    pub fn from_plural(s: &str) -> Option<Self> {
        match s {
            "models" => Some(RepoKind::Model),
            "datasets" => Some(RepoKind::Dataset),
            _ => None,
        }
    }
}

impl FromStr for RepoKind {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "model" => Ok(RepoKind::Model),
            "dataset" => Ok(RepoKind::Dataset),
            other => Err(ValidationError::new(format!(
                "unknown repo type {other:?}: expected \"model\" or \"dataset\""
            ))),
        }
    }
}

/// Who may read a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Public,
    Private,
}

impl Visibility {
    pub fn is_private(self) -> bool {
        self == Visibility::Private
    }
}

/// A validated `namespace/name` pair following the Hub's rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoId {
    namespace: String,
    name: String,
}

impl RepoId {
    pub fn new(namespace: &str, name: &str) -> Result<Self, ValidationError> {
        validate_part("namespace", namespace)?;
        validate_part("name", name)?;
        Ok(Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Checks one part of a repo id: `[\w\-.]{1,96}` (ASCII), no `--` or `..`, no `-`/`.` at the
/// ends, no `.git` suffix. Also used for user names, which become namespaces.
pub fn validate_part(what: &str, s: &str) -> Result<(), ValidationError> {
    if s.is_empty() || s.len() > 96 {
        return Err(ValidationError::new(format!(
            "{what} must be 1 to 96 characters long, got {}",
            s.len()
        )));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(ValidationError::new(format!(
            "{what} {s:?} contains {c:?}: only letters, digits, '_', '-' and '.' are allowed"
        )));
    }
    if s.contains("--") || s.contains("..") {
        return Err(ValidationError::new(format!(
            "{what} {s:?} must not contain \"--\" or \"..\""
        )));
    }
    if s.starts_with(['-', '.']) || s.ends_with(['-', '.']) {
        return Err(ValidationError::new(format!(
            "{what} {s:?} must not start or end with '-' or '.'"
        )));
    }
    if s.ends_with(".git") {
        return Err(ValidationError::new(format!(
            "{what} {s:?} must not end with \".git\""
        )));
    }
    Ok(())
}

impl FromStr for RepoId {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('/') {
            Some((ns, name)) if !name.contains('/') => RepoId::new(ns, name),
            _ => Err(ValidationError::new(format!(
                "repo id {s:?} must have the form namespace/name"
            ))),
        }
    }
}

impl fmt::Display for RepoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_hub_style_ids() {
        for id in ["alice/bert-base", "org_1/model.v2", "a/b", "A-b/C_d.e"] {
            assert!(id.parse::<RepoId>().is_ok(), "{id}");
        }
    }

    #[test]
    fn rejects_bad_ids() {
        let long = format!("a/{}", "x".repeat(97));
        for id in [
            "noslash", "a/b/c", "a/", "/b", "a/b--c", "a/b..c", "a/.b", "a/b-", "a/b.git", "a/b c",
            "a/é", &long,
        ] {
            assert!(id.parse::<RepoId>().is_err(), "{id}");
        }
    }

    #[test]
    fn kind_round_trips() {
        for k in [RepoKind::Model, RepoKind::Dataset] {
            assert_eq!(k.as_str().parse::<RepoKind>().unwrap(), k);
            assert_eq!(RepoKind::from_plural(k.plural()), Some(k));
        }
    }
}
