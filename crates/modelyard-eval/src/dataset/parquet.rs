//! Parquet tables, row group by row group: numeric feature columns and a label column, or (as
//! Hugging Face image datasets store them) an image column of `{bytes, path}` and a label.

use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::{Field, Row};

use super::table::{label_index, target};
use super::{Features, Format, LabelMap, ReadOptions, Sample, Split, Target};
use crate::error::{EvalError, Result};

fn open_file(root: &Path, rel: &Path) -> Result<(SerializedFileReader<File>, String)> {
    let name = rel.to_string_lossy().into_owned();
    let file =
        File::open(root.join(rel)).map_err(|e| EvalError::io(format!("cannot open {name}"), e))?;
    let reader = SerializedFileReader::new(file)
        .map_err(|e| EvalError::input(format!("{name}: not a readable Parquet file: {e}")))?;
    Ok((reader, name))
}

fn column_names(reader: &SerializedFileReader<File>) -> Vec<String> {
    reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .root_schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect()
}

fn number(field: &Field) -> Option<f64> {
    Some(match field {
        Field::Bool(b) => f64::from(u8::from(*b)),
        Field::Byte(v) => f64::from(*v),
        Field::Short(v) => f64::from(*v),
        Field::Int(v) => f64::from(*v),
        Field::Long(v) => *v as f64,
        Field::UByte(v) => f64::from(*v),
        Field::UShort(v) => f64::from(*v),
        Field::UInt(v) => f64::from(*v),
        Field::ULong(v) => *v as f64,
        Field::Float16(v) => f64::from(*v),
        Field::Float(v) => f64::from(*v),
        Field::Double(v) => *v,
        _ => return None,
    })
}

fn label_text(field: &Field) -> Option<String> {
    match field {
        Field::Str(s) => Some(s.clone()),
        other => number(other).map(|n| n.to_string()),
    }
}

fn image_bytes(field: &Field) -> Option<&[u8]> {
    match field {
        Field::Bytes(b) => Some(b.data()),
        Field::Group(row) => row.get_column_iter().find_map(|(name, f)| match f {
            Field::Bytes(b) if name == "bytes" => Some(b.data()),
            _ => None,
        }),
        _ => None,
    }
}

fn sample(
    row: &Row,
    label: usize,
    image: Option<usize>,
    map: &LabelMap,
    opts: &ReadOptions,
    origin: String,
) -> Result<Sample> {
    let mut tgt: Option<Target> = None;
    let mut values = Vec::new();
    let mut img = None;
    for (i, (name, field)) in row.get_column_iter().enumerate() {
        if i == label {
            let text = label_text(field).ok_or_else(|| {
                EvalError::input(format!("{origin}: label {field} is not a class or number"))
            })?;
            tgt = Some(target(&text, map, opts, &origin)?);
        } else if Some(i) == image {
            let bytes = image_bytes(field).ok_or_else(|| {
                EvalError::input(format!("{origin}: column {name:?} holds no image bytes"))
            })?;
            img =
                Some(image::load_from_memory(bytes).map_err(|e| {
                    EvalError::input(format!("{origin}: cannot decode image: {e}"))
                })?);
        } else if image.is_none() {
            let v = number(field).ok_or_else(|| {
                EvalError::input(format!(
                    "{origin}: column {name:?} holds {field}, not a number"
                ))
            })?;
            values.push(v as f32);
        }
    }
    let target = tgt.ok_or_else(|| EvalError::input(format!("{origin}: no label")))?;
    let features = match img {
        Some(i) => Features::Image(i),
        None => Features::Row(values),
    };
    Ok(Sample {
        features,
        target,
        origin,
    })
}

pub fn open(root: &Path, files: &[PathBuf], opts: &ReadOptions) -> Result<Split> {
    let mut len = 0usize;
    let mut columns: Option<Vec<String>> = None;
    let mut layout = Vec::new();
    for rel in files {
        let (reader, name) = open_file(root, rel)?;
        len += reader.metadata().file_metadata().num_rows().max(0) as usize;
        let headers = column_names(&reader);
        let label = label_index(&headers, opts, &name)?;
        let image = if opts.images {
            let wanted = opts.image_column.as_deref().unwrap_or("image");
            Some(headers.iter().position(|h| h == wanted).ok_or_else(|| {
                EvalError::input(format!(
                    "{name}: image column {wanted:?} is missing; the columns are {}",
                    headers.join(", ")
                ))
            })?)
        } else {
            None
        };
        let features: Vec<String> = headers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != label && Some(*i) != image)
            .map(|(_, h)| h.clone())
            .collect();
        if let Some(c) = &columns {
            if image.is_none() && *c != features {
                return Err(EvalError::input(format!(
                    "{name}: columns differ from the split's first file"
                )));
            }
        }
        columns = Some(features);
        layout.push((rel.clone(), label, image));
    }
    let map = LabelMap::new(opts.label_names.as_deref());
    let opts2 = opts.clone();
    let root = root.to_path_buf();
    let samples = layout.into_iter().flat_map(move |(rel, label, image)| {
        let map = map.clone();
        let opts = opts2.clone();
        let iter: Box<dyn Iterator<Item = Result<Sample>> + Send> = match open_file(&root, &rel) {
            Err(e) => Box::new(std::iter::once(Err(e))),
            Ok((reader, name)) => Box::new(reader.into_iter().enumerate().map(move |(i, row)| {
                let origin = format!("{name} row {i}");
                let row = row.map_err(|e| EvalError::input(format!("{origin}: {e}")))?;
                sample(&row, label, image, &map, &opts, origin)
            })),
        };
        iter
    });
    Ok(Split {
        format: Format::Parquet,
        files: Vec::new(),
        len: Some(len),
        label_names: opts.label_names.clone(),
        columns: if opts.images { None } else { columns },
        samples: Box::new(samples),
    })
}
