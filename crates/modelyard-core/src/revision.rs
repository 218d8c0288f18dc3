//! Commit ids (40 lowercase hex, never changing) and branch/tag names.

use std::fmt;
use std::str::FromStr;

use crate::ValidationError;

/// An immutable commit id: 20 bytes shown as 40 lowercase hex digits, like git's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommitId([u8; 20]);

impl CommitId {
    pub fn from_bytes(bytes: [u8; 20]) -> Self {
        Self(bytes)
    }

    /// Whether `s` has the shape of a full commit id (and so names a commit, not a branch).
    pub fn looks_like(s: &str) -> bool {
        s.len() == 40 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }
}

impl FromStr for CommitId {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !Self::looks_like(s) {
            return Err(ValidationError::new(format!(
                "{s:?} is not a commit id (40 lowercase hex digits)"
            )));
        }
        let mut out = [0u8; 20];
        hex::decode_to_slice(s, &mut out).map_err(|e| ValidationError::new(e.to_string()))?;
        Ok(Self(out))
    }
}

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// A branch or tag name, checked like `git check-ref-format` (simplified).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RefName(String);

impl RefName {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if s.is_empty() || s.len() > 200 {
            return Err(ValidationError::new(
                "branch or tag name must be 1 to 200 characters long",
            ));
        }
        if CommitId::looks_like(s) {
            return Err(ValidationError::new(format!(
                "{s:?} looks like a commit id and cannot name a branch or tag"
            )));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')))
        {
            return Err(ValidationError::new(format!(
                "branch or tag name {s:?} contains {c:?}"
            )));
        }
        if s.contains("..")
            || s.contains("//")
            || s.starts_with(['/', '.', '-'])
            || s.ends_with(['/', '.'])
            || s.ends_with(".lock")
        {
            return Err(ValidationError::new(format!(
                "{s:?} is not a valid branch or tag name"
            )));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RefName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_ids_are_lowercase_hex() {
        let s = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(s.parse::<CommitId>().unwrap().to_string(), s);
        assert!(s.to_uppercase().parse::<CommitId>().is_err());
        assert!(s[..39].parse::<CommitId>().is_err());
    }

    #[test]
    fn ref_names() {
        for ok in ["main", "v1.0", "refs/pr/1", "feature/x_y-z"] {
            assert!(RefName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a..b",
            "/a",
            "a/",
            "a b",
            "x.lock",
            "-a",
            "0123456789abcdef0123456789abcdef01234567",
        ] {
            assert!(RefName::parse(bad).is_err(), "{bad}");
        }
    }
}
