//! Which files make up a split: the card's patterns, else Hugging Face-style name matching.

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSetBuilder};

use crate::error::{EvalError, Result};

/// Names a split's files commonly carry, by split.
const ALIASES: &[(&str, &[&str])] = &[
    ("train", &["train", "training"]),
    ("validation", &["validation", "valid", "val", "dev"]),
    ("test", &["test", "testing", "eval", "t10k"]),
];

/// Every data file under `root` (relative paths, sorted), without cards and hidden files.
pub fn data_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(root).follow_links(true) {
        let entry = entry.map_err(|e| {
            EvalError::io(
                format!("cannot list {}", root.display()),
                e.into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("walk failed")),
            )
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
        let hidden = rel
            .components()
            .any(|c| c.as_os_str().to_string_lossy().starts_with('.'));
        if hidden || rel == Path::new("README.md") {
            continue;
        }
        out.push(rel.to_path_buf());
    }
    out.sort();
    Ok(out)
}

fn words(path: &Path) -> Vec<String> {
    path.to_string_lossy()
        .to_lowercase()
        .split(['/', '-', '_', '.', ' '])
        .map(String::from)
        .collect()
}

fn aliases(split: &str) -> Vec<&str> {
    ALIASES
        .iter()
        .find(|(s, _)| *s == split)
        .map(|(_, a)| a.to_vec())
        .unwrap_or_else(|| vec![split])
}

/// The usual splits (train, validation, test) whose names some of `files` carry.
pub fn named_splits(files: &[PathBuf]) -> Vec<String> {
    ALIASES
        .iter()
        .filter(|(_, names)| {
            files
                .iter()
                .any(|f| words(f).iter().any(|w| names.contains(&w.as_str())))
        })
        .map(|(split, _)| split.to_string())
        .collect()
}

/// The files of `split` among `files`, by the card's `(split, patterns)` when it has any.
pub fn split_files(
    files: &[PathBuf],
    card_splits: &[(String, Vec<String>)],
    split: &str,
) -> Result<Vec<PathBuf>> {
    if !card_splits.is_empty() {
        let Some((_, patterns)) = card_splits.iter().find(|(s, _)| s == split) else {
            let known: Vec<&str> = card_splits.iter().map(|(s, _)| s.as_str()).collect();
            return Err(EvalError::input(format!(
                "the dataset card declares no split {split:?}; it declares {}",
                known.join(", ")
            )));
        };
        let mut set = GlobSetBuilder::new();
        for p in patterns {
            let p = if p.ends_with('/') {
                format!("{p}**")
            } else {
                p.clone()
            };
            let glob = GlobBuilder::new(&p)
                .literal_separator(true)
                .build()
                .map_err(|e| EvalError::input(format!("dataset card pattern {p:?}: {e}")))?;
            set.add(glob);
        }
        let set = set
            .build()
            .map_err(|e| EvalError::input(format!("dataset card patterns: {e}")))?;
        let out: Vec<PathBuf> = files.iter().filter(|f| set.is_match(f)).cloned().collect();
        if out.is_empty() {
            return Err(EvalError::input(format!(
                "split {split:?} is empty: no file matches {}",
                patterns.join(", ")
            )));
        }
        return Ok(out);
    }
    let wanted = aliases(split);
    let out: Vec<PathBuf> = files
        .iter()
        .filter(|f| words(f).iter().any(|w| wanted.contains(&w.as_str())))
        .cloned()
        .collect();
    if !out.is_empty() {
        return Ok(out);
    }
    let any_split_named = files.iter().any(|f| {
        words(f)
            .iter()
            .any(|w| ALIASES.iter().any(|(_, a)| a.contains(&w.as_str())))
    });
    if any_split_named {
        return Err(EvalError::input(format!(
            "split {split:?} is empty: no file name mentions it, and the dataset card declares \
             no splits"
        )));
    }
    if files.is_empty() {
        return Err(EvalError::input(format!(
            "split {split:?} is empty: the dataset has no data files"
        )));
    }
    // One unnamed split: every file.
    Ok(files.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(v: &[&str]) -> Vec<PathBuf> {
        v.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn card_patterns_select_files() {
        let files = paths(&[
            "t10k-images.gz",
            "t10k-labels.gz",
            "train-images.gz",
            "a/b.csv",
        ]);
        let splits = vec![
            ("test".to_string(), vec!["t10k-*".to_string()]),
            ("extra".to_string(), vec!["a/".to_string()]),
        ];
        assert_eq!(
            split_files(&files, &splits, "test").unwrap(),
            paths(&["t10k-images.gz", "t10k-labels.gz"])
        );
        assert_eq!(
            split_files(&files, &splits, "extra").unwrap(),
            paths(&["a/b.csv"])
        );
        let err = split_files(&files, &splits, "train")
            .unwrap_err()
            .to_string();
        assert!(err.contains("declares test, extra"), "{err}");
    }

    #[test]
    fn names_select_files_without_a_card() {
        let files = paths(&[
            "data/train-0.parquet",
            "data/test-0.parquet",
            "test/cat/1.png",
        ]);
        assert_eq!(
            split_files(&files, &[], "test").unwrap(),
            paths(&["data/test-0.parquet", "test/cat/1.png"])
        );
        assert!(split_files(&files, &[], "validation").is_err());
        let single = paths(&["iris.csv"]);
        assert_eq!(split_files(&single, &[], "test").unwrap(), single);
        assert!(split_files(&[], &[], "test").is_err());
    }
}
