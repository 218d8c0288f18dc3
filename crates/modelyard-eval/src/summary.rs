//! What a dataset holds, for its page: per split, the format, the number of rows, the label
//! distribution, and a preview (the first rows of a table, or the first images as small PNGs).

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::card::dataset_card;
use crate::dataset::{self, split, Features, Format, ReadOptions, Target};
use crate::error::Result;

/// Rows counted per split at most; a larger split says "at least".
pub const MAX_ROWS: u64 = 1_000_000;
const PREVIEW_ROWS: usize = 8;
const PREVIEW_IMAGES: usize = 12;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetSummary {
    pub splits: Vec<SplitSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitSummary {
    pub name: String,
    pub files: usize,
    pub format: Option<Format>,
    pub rows: u64,
    /// `rows` stopped at [`MAX_ROWS`].
    pub truncated: bool,
    /// Label → count (class names when the card names them).
    pub labels: BTreeMap<String, u64>,
    pub columns: Option<Vec<String>>,
    /// The first rows of a table, as text.
    pub preview_rows: Vec<Vec<String>>,
    /// The first images as `(label, PNG bytes in base64)`.
    pub preview_images: Vec<(String, String)>,
    /// Why the split could not be read (the rest of the summary is what was read before).
    pub error: Option<String>,
}

impl SplitSummary {
    fn empty(name: &str, files: usize) -> Self {
        SplitSummary {
            name: name.to_string(),
            files,
            format: None,
            rows: 0,
            truncated: false,
            labels: BTreeMap::new(),
            columns: None,
            preview_rows: Vec::new(),
            preview_images: Vec::new(),
            error: None,
        }
    }
}

fn encode_png(img: &image::DynamicImage) -> Option<String> {
    use base64::Engine;
    let thumb = img.thumbnail(96, 96);
    let mut out = Cursor::new(Vec::new());
    thumb.write_to(&mut out, image::ImageFormat::Png).ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(out.into_inner()))
}

fn summarize_split(
    root: &Path,
    name: &str,
    files: Vec<std::path::PathBuf>,
    label_names: Option<&[String]>,
    label_column: Option<&str>,
) -> SplitSummary {
    let mut s = SplitSummary {
        format: dataset::detect(&files).ok(),
        ..SplitSummary::empty(name, files.len())
    };
    let images = matches!(s.format, Some(Format::Idx | Format::ImageFolder));
    let opts = |classification: bool, images: bool| ReadOptions {
        label_names: label_names.map(<[String]>::to_vec),
        label_column: label_column.map(String::from),
        image_column: None,
        classification,
        images,
    };
    // Parquet holds images or numbers; try images first when it has an `image` column.
    let mut opened = dataset::open(root, files.clone(), &opts(true, images));
    if opened.is_err() && s.format == Some(Format::Parquet) {
        opened = dataset::open(root, files.clone(), &opts(true, true));
    }
    if opened.is_err() {
        // Numeric targets: a regression table.
        if let Ok(o) = dataset::open(root, files.clone(), &opts(false, false)) {
            opened = Ok(o);
        }
    }
    let mut split = match opened {
        Ok(o) => o,
        Err(e) => {
            s.error = Some(e.to_string());
            return s;
        }
    };
    let mut first = split.samples.next();
    if matches!(first, Some(Err(_))) && !images {
        // Labels that are not classes: a regression target.
        if let Ok(mut o) = dataset::open(root, files, &opts(false, false)) {
            let retry = o.samples.next();
            if matches!(retry, Some(Ok(_))) {
                first = retry;
                split = o;
            }
        }
    }
    s.columns = split.columns.clone();
    let names = split.label_names.clone();
    for sample in first.into_iter().chain(split.samples) {
        let sample = match sample {
            Ok(x) => x,
            Err(e) => {
                s.error = Some(e.to_string());
                break;
            }
        };
        s.rows += 1;
        let label = match sample.target {
            Target::Class(c) => names
                .as_ref()
                .and_then(|n| n.get(c).cloned())
                .unwrap_or_else(|| c.to_string()),
            Target::Value(v) => format!("{v}"),
        };
        match &sample.features {
            Features::Row(r) if s.preview_rows.len() < PREVIEW_ROWS => {
                let mut row: Vec<String> = r.iter().map(|v| v.to_string()).collect();
                row.push(label.clone());
                s.preview_rows.push(row);
            }
            Features::Image(img) if s.preview_images.len() < PREVIEW_IMAGES => {
                if let Some(png) = encode_png(img) {
                    s.preview_images.push((label.clone(), png));
                }
            }
            _ => {}
        }
        if matches!(sample.target, Target::Class(_)) && s.labels.len() < 1000 {
            *s.labels.entry(label).or_default() += 1;
        }
        if s.rows >= MAX_ROWS {
            s.truncated = true;
            break;
        }
    }
    if let Some(c) = &mut s.columns {
        c.push(label_column.unwrap_or("label").to_string());
    }
    s
}

/// Summarizes every split of the dataset in `root` (the card's splits, else the splits its
/// file names show, else one split named `all`).
pub fn summarize(root: &Path) -> Result<DatasetSummary> {
    let card = dataset_card(root)?;
    let files = split::data_files(root)?;
    let mut names: Vec<String> = card.splits.iter().map(|(n, _)| n.clone()).collect();
    if names.is_empty() {
        names = split::named_splits(&files);
    }
    let mut splits = Vec::new();
    if names.is_empty() {
        if !files.is_empty() {
            splits.push(summarize_split(
                root,
                "all",
                files,
                card.label_names.as_deref(),
                card.label_column.as_deref(),
            ));
        }
    } else {
        for name in names {
            match split::split_files(&files, &card.splits, &name) {
                Ok(f) => splits.push(summarize_split(
                    root,
                    &name,
                    f,
                    card.label_names.as_deref(),
                    card.label_column.as_deref(),
                )),
                Err(e) => splits.push(SplitSummary {
                    error: Some(e.to_string()),
                    ..SplitSummary::empty(&name, 0)
                }),
            }
        }
    }
    Ok(DatasetSummary { splits })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarizes_mnist_and_a_table() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/mnist");
        let s = summarize(&root).unwrap();
        assert_eq!(s.splits.len(), 1);
        let t = &s.splits[0];
        assert_eq!(
            (t.name.as_str(), t.rows, t.format),
            ("test", 10_000, Some(Format::Idx))
        );
        assert_eq!(t.labels.values().sum::<u64>(), 10_000);
        assert_eq!(t.labels["1"], 1135, "MNIST's test split has 1,135 ones");
        assert_eq!(t.preview_images.len(), PREVIEW_IMAGES);
        assert_eq!(t.preview_images[0].0, "7");

        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("train.csv"),
            "a,b,label\n1,2,0\n3,4,1\n5,6,1\n",
        )
        .unwrap();
        std::fs::write(d.path().join("test.csv"), "a,b,label\n1,2,x\n").unwrap();
        std::fs::write(
            d.path().join("validation.csv"),
            "a,b,label\n1,2,0.5\n3,4,1.5\n",
        )
        .unwrap();
        let s = summarize(d.path()).unwrap();
        let names: Vec<&str> = s.splits.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["train", "validation", "test"]);
        assert_eq!(s.splits[0].rows, 3);
        assert_eq!(s.splits[0].labels["1"], 2);
        assert_eq!(
            s.splits[0].columns.as_deref(),
            Some(&["a".to_string(), "b".into(), "label".into()][..])
        );
        assert_eq!(s.splits[0].preview_rows[2], ["5", "6", "1"]);
        assert_eq!(
            s.splits[1].rows, 2,
            "numeric labels read as a regression target"
        );
        assert!(s.splits[1].labels.is_empty());
        assert!(s.splits[2].error.as_deref().unwrap().contains("\"x\""));

        let one = tempfile::tempdir().unwrap();
        std::fs::write(one.path().join("iris.csv"), "a,label\n1,0\n").unwrap();
        let s = summarize(one.path()).unwrap();
        let names: Vec<&str> = s.splits.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(
            names,
            ["all"],
            "a file naming no split is one split, listed once"
        );
    }
}
