//! IDX files (the MNIST format): a big-endian header, then `u8` items; gzip is read on the fly.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use image::{DynamicImage, GrayImage};

use super::{Features, Format, ReadOptions, Sample, Split, Target};
use crate::error::{EvalError, Result};

/// An open IDX file positioned after its header.
struct IdxFile {
    name: String,
    reader: Box<dyn Read + Send>,
    dims: Vec<usize>,
}

fn open_idx(root: &Path, rel: &Path) -> Result<IdxFile> {
    let name = rel.to_string_lossy().into_owned();
    let path = root.join(rel);
    let file = File::open(&path).map_err(|e| EvalError::io(format!("cannot open {name}"), e))?;
    let mut reader: Box<dyn Read + Send> = if name.ends_with(".gz") {
        Box::new(BufReader::new(GzDecoder::new(BufReader::new(file))))
    } else {
        Box::new(BufReader::new(file))
    };
    let mut magic = [0u8; 4];
    reader
        .read_exact(&mut magic)
        .map_err(|e| EvalError::input(format!("{name}: not an IDX file ({e})")))?;
    if magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 || magic[3] == 0 || magic[3] > 4 {
        return Err(EvalError::input(format!(
            "{name}: not an IDX file of unsigned bytes (magic {magic:02x?})"
        )));
    }
    let mut dims = Vec::new();
    for _ in 0..magic[3] {
        let mut d = [0u8; 4];
        reader
            .read_exact(&mut d)
            .map_err(|e| EvalError::input(format!("{name}: truncated IDX header ({e})")))?;
        dims.push(u32::from_be_bytes(d) as usize);
    }
    Ok(IdxFile { name, reader, dims })
}

pub fn open(root: &Path, files: &[PathBuf], opts: &ReadOptions) -> Result<Split> {
    let pick = |needle: &str| -> Result<&PathBuf> {
        let found: Vec<&PathBuf> = files
            .iter()
            .filter(|f| f.to_string_lossy().to_lowercase().contains(needle))
            .collect();
        match found.as_slice() {
            [one] => Ok(one),
            [] => Err(EvalError::input(format!(
                "IDX split has no *-{needle} file (the labels or images are missing)"
            ))),
            _ => Err(EvalError::input(format!(
                "IDX split has {} *-{needle} files; declare one per split in the dataset card",
                found.len()
            ))),
        }
    };
    let images = open_idx(root, pick("idx3-ubyte")?)?;
    let labels = open_idx(root, pick("idx1-ubyte")?)?;
    if images.dims.len() != 3 {
        return Err(EvalError::input(format!(
            "{}: images need 3 dimensions (count, rows, columns), found {:?}",
            images.name, images.dims
        )));
    }
    if labels.dims.len() != 1 {
        return Err(EvalError::input(format!(
            "{}: labels need 1 dimension, found {:?}",
            labels.name, labels.dims
        )));
    }
    let (n, rows, cols) = (images.dims[0], images.dims[1], images.dims[2]);
    if labels.dims[0] != n {
        return Err(EvalError::input(format!(
            "{} holds {n} images but {} holds {} labels",
            images.name, labels.name, labels.dims[0]
        )));
    }
    if rows == 0 || cols == 0 || rows * cols > 64 << 20 {
        return Err(EvalError::input(format!(
            "{}: implausible image size {rows}×{cols}",
            images.name
        )));
    }
    if !opts.classification {
        return Err(EvalError::input(
            "IDX labels are classes, not regression targets",
        ));
    }
    let label_names = opts
        .label_names
        .clone()
        .or_else(|| Some((0..10).map(|d| d.to_string()).collect()));
    let mut state = (images, labels, 0usize);
    let samples = std::iter::from_fn(move || {
        let (images, labels, i) = &mut state;
        if *i >= n {
            return None;
        }
        let index = *i;
        *i += 1;
        let mut pixels = vec![0u8; rows * cols];
        let mut label = [0u8; 1];
        let read = images
            .reader
            .read_exact(&mut pixels)
            .map_err(|e| (images.name.clone(), e))
            .and_then(|()| {
                labels
                    .reader
                    .read_exact(&mut label)
                    .map_err(|e| (labels.name.clone(), e))
            });
        if let Err((name, e)) = read {
            *i = n;
            return Some(Err(EvalError::input(format!(
                "{name}: truncated at item {index} of {n} ({e})"
            ))));
        }
        let img = GrayImage::from_raw(cols as u32, rows as u32, pixels)
            .expect("buffer sized from the header");
        Some(Ok(Sample {
            features: Features::Image(DynamicImage::ImageLuma8(img)),
            target: Target::Class(label[0] as usize),
            origin: format!("{} #{index}", images.name),
        }))
    });
    Ok(Split {
        format: Format::Idx,
        files: Vec::new(),
        len: Some(n),
        label_names,
        columns: None,
        samples: Box::new(samples),
    })
}
