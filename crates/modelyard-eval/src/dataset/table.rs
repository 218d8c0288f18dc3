//! CSV tables with a header row: one column is the label or target, the others are features.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::{Features, Format, LabelMap, ReadOptions, Sample, Split, Target};
use crate::error::{EvalError, Result};

/// Where the label column is, or an error that names the columns there are.
pub fn label_index(headers: &[String], opts: &ReadOptions, file: &str) -> Result<usize> {
    let wanted = opts.label_column.as_deref().unwrap_or("label");
    headers.iter().position(|h| h == wanted).ok_or_else(|| {
        EvalError::input(format!(
            "{file}: label column {wanted:?} is missing; the columns are {}",
            headers.join(", ")
        ))
    })
}

/// The target of a row from the label column's text.
pub fn target(text: &str, map: &LabelMap, opts: &ReadOptions, origin: &str) -> Result<Target> {
    if opts.classification {
        return Ok(Target::Class(map.class(text, origin)?));
    }
    text.trim()
        .parse::<f64>()
        .map(Target::Value)
        .map_err(|_| EvalError::input(format!("{origin}: target {text:?} is not a number")))
}

fn open_reader(root: &Path, rel: &Path) -> Result<(csv::Reader<File>, Vec<String>, String)> {
    let name = rel.to_string_lossy().into_owned();
    let file =
        File::open(root.join(rel)).map_err(|e| EvalError::io(format!("cannot open {name}"), e))?;
    let mut reader = csv::Reader::from_reader(file);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| EvalError::input(format!("{name}: cannot read the header row: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    Ok((reader, headers, name))
}

pub fn open(root: &Path, files: &[PathBuf], opts: &ReadOptions) -> Result<Split> {
    if opts.images {
        return Err(EvalError::input(
            "CSV tables hold numbers, not images; use a tabular task",
        ));
    }
    // Check every file's header before reading any row.
    let mut columns: Option<Vec<String>> = None;
    for rel in files {
        let (_, headers, name) = open_reader(root, rel)?;
        let label = label_index(&headers, opts, &name)?;
        let features: Vec<String> = headers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != label)
            .map(|(_, h)| h.clone())
            .collect();
        match &columns {
            Some(c) if *c != features => {
                return Err(EvalError::input(format!(
                    "{name}: columns differ from the split's first file ({} vs {})",
                    features.join(", "),
                    c.join(", ")
                )))
            }
            _ => columns = Some(features),
        }
    }
    let map = LabelMap::new(opts.label_names.as_deref());
    let opts2 = opts.clone();
    let root = root.to_path_buf();
    let files = files.to_vec();
    let samples = files.into_iter().flat_map(move |rel| {
        let map = map.clone();
        let opts = opts2.clone();
        let opened = open_reader(&root, &rel);
        let iter: Box<dyn Iterator<Item = Result<Sample>> + Send> = match opened {
            Err(e) => Box::new(std::iter::once(Err(e))),
            Ok((reader, headers, name)) => {
                let label = match label_index(&headers, &opts, &name) {
                    Ok(l) => l,
                    Err(e) => {
                        return Box::new(std::iter::once(Err(e)))
                            as Box<dyn Iterator<Item = _> + Send>
                    }
                };
                Box::new(reader.into_records().enumerate().map(move |(i, rec)| {
                    let origin = format!("{name} row {}", i + 1);
                    let rec = rec.map_err(|e| EvalError::input(format!("{origin}: {e}")))?;
                    let mut row = Vec::with_capacity(rec.len().saturating_sub(1));
                    let mut tgt = None;
                    for (c, field) in rec.iter().enumerate() {
                        if c == label {
                            tgt = Some(target(field, &map, &opts, &origin)?);
                        } else {
                            let v = field.trim().parse::<f32>().map_err(|_| {
                                EvalError::input(format!(
                                    "{origin}: column {:?} holds {field:?}, not a number",
                                    headers.get(c).map(String::as_str).unwrap_or("?")
                                ))
                            })?;
                            row.push(v);
                        }
                    }
                    let target = tgt.ok_or_else(|| {
                        EvalError::input(format!("{origin}: the label column is empty"))
                    })?;
                    Ok(Sample {
                        features: Features::Row(row),
                        target,
                        origin,
                    })
                }))
            }
        };
        iter
    });
    Ok(Split {
        format: Format::Csv,
        files: Vec::new(),
        len: None,
        label_names: opts.label_names.clone(),
        columns,
        samples: Box::new(samples),
    })
}
