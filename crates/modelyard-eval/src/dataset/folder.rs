//! Image folders: `<split>/<class>/<image>`, the class being the image's parent folder.

use std::path::{Path, PathBuf};

use super::{Features, Format, LabelMap, ReadOptions, Sample, Split, Target};
use crate::error::{EvalError, Result};

fn class_of(rel: &Path) -> Result<String> {
    rel.parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| {
            EvalError::input(format!(
                "{}: images must sit in one folder per class",
                rel.display()
            ))
        })
}

/// Decodes one image file, naming it in the error.
pub fn decode_file(path: &Path, name: &str) -> Result<image::DynamicImage> {
    image::ImageReader::open(path)
        .map_err(|e| EvalError::io(format!("cannot open {name}"), e))?
        .with_guessed_format()
        .map_err(|e| EvalError::io(format!("cannot read {name}"), e))?
        .decode()
        .map_err(|e| EvalError::input(format!("{name}: cannot decode image: {e}")))
}

pub fn open(root: &Path, files: &[PathBuf], opts: &ReadOptions) -> Result<Split> {
    if !opts.classification {
        return Err(EvalError::input(
            "image folders name classes, not regression targets",
        ));
    }
    let classes: Vec<String> = files.iter().map(|f| class_of(f)).collect::<Result<_>>()?;
    let names = match &opts.label_names {
        Some(n) => n.clone(),
        None => {
            let mut n = classes.clone();
            n.sort();
            n.dedup();
            n
        }
    };
    let map = LabelMap::new(Some(&names));
    let root = root.to_path_buf();
    let items: Vec<(PathBuf, String)> = files.iter().cloned().zip(classes).collect();
    let samples = items.into_iter().map(move |(rel, class)| {
        let name = rel.to_string_lossy().into_owned();
        let target = map.class(&class, &name)?;
        let img = decode_file(&root.join(&rel), &name)?;
        Ok(Sample {
            features: Features::Image(img),
            target: Target::Class(target),
            origin: name,
        })
    });
    Ok(Split {
        format: Format::ImageFolder,
        files: Vec::new(),
        len: Some(files.len()),
        label_names: Some(names),
        columns: None,
        samples: Box::new(samples),
    })
}
