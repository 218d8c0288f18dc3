//! File paths inside a repository, refused at the edge when they could escape or confuse storage.

use std::fmt;

use crate::ValidationError;

/// Longest accepted path, in bytes; longer names are refused rather than truncated.
pub const MAX_PATH_BYTES: usize = 1024;
/// Longest accepted single path segment, in bytes (the common file-system limit).
pub const MAX_SEGMENT_BYTES: usize = 255;

/// A relative, normalized `/`-separated path of a file in a repository.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoPath(String);

impl RepoPath {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if s.is_empty() {
            return Err(ValidationError::new("path must not be empty"));
        }
        if s.len() > MAX_PATH_BYTES {
            return Err(ValidationError::new(format!(
                "path is {} bytes long; the limit is {MAX_PATH_BYTES}",
                s.len()
            )));
        }
        if s.starts_with('/') {
            return Err(ValidationError::new(format!(
                "path {s:?} is absolute; paths are relative to the repository root"
            )));
        }
        if s.contains('\\') {
            return Err(ValidationError::new(format!(
                "path {s:?} contains a backslash; use '/' to separate folders"
            )));
        }
        if let Some(c) = s.chars().find(|c| c.is_control()) {
            return Err(ValidationError::new(format!(
                "path {s:?} contains the control character {c:?}"
            )));
        }
        for seg in s.split('/') {
            match seg {
                "" => {
                    return Err(ValidationError::new(format!(
                        "path {s:?} has an empty segment"
                    )))
                }
                "." | ".." => {
                    return Err(ValidationError::new(format!(
                        "path {s:?} contains a {seg:?} segment"
                    )))
                }
                ".git" => {
                    return Err(ValidationError::new(format!(
                        "path {s:?} is inside .git, which is reserved"
                    )))
                }
                _ if seg.len() > MAX_SEGMENT_BYTES => {
                    return Err(ValidationError::new(format!(
                    "a segment of path {s:?} is {} bytes long; the limit is {MAX_SEGMENT_BYTES}",
                    seg.len()
                )))
                }
                _ => {}
            }
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The folder holding this path, `""` for the root.
    pub fn parent(&self) -> &str {
        self.0.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
    }

    /// The last segment.
    pub fn file_name(&self) -> &str {
        self.0.rsplit_once('/').map(|(_, f)| f).unwrap_or(&self.0)
    }
}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Normalizes a folder prefix given by a user (`"a/b/"`, `"/"`, `""`) to `"a/b"` or `""`.
pub fn parse_folder(s: &str) -> Result<String, ValidationError> {
    let trimmed = s.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    Ok(RepoPath::parse(trimmed)?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_paths() {
        for p in [
            "README.md",
            "a/b/c.bin",
            "file with space.txt",
            "模型/权重.bin",
            ".gitattributes",
        ] {
            assert_eq!(RepoPath::parse(p).unwrap().as_str(), p);
        }
    }

    #[test]
    fn rejects_escaping_and_odd_paths() {
        let long = "a/".repeat(600);
        let seg = "x".repeat(256);
        for p in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a/./b",
            "a//b",
            "a\\b",
            "a\0b",
            "a/",
            ".git/config",
            &long,
            &seg,
        ] {
            assert!(RepoPath::parse(p).is_err(), "{p:?}");
        }
    }

    #[test]
    fn parent_and_name() {
        let p = RepoPath::parse("a/b/c.txt").unwrap();
        assert_eq!(p.parent(), "a/b");
        assert_eq!(p.file_name(), "c.txt");
        assert_eq!(RepoPath::parse("x").unwrap().parent(), "");
    }

    #[test]
    fn folders_normalize() {
        assert_eq!(parse_folder("/").unwrap(), "");
        assert_eq!(parse_folder("a/b/").unwrap(), "a/b");
        assert!(parse_folder("../a").is_err());
    }
}
