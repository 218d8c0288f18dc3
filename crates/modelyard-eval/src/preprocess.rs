//! Turning samples into model input: image layout, channels, size and normalisation, or a row of
//! features. Mismatches are errors that name the sample and both shapes.

use image::imageops::FilterType;
use image::DynamicImage;

use crate::dataset::Features;
use crate::error::{EvalError, Result};
use crate::model::InputSpec;
use crate::options::{ChannelOrder, Layout, Preprocess};

/// How one image becomes `channels × height × width` floats.
#[derive(Debug, Clone)]
pub struct ImagePlan {
    layout: Layout,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    scale: f32,
    mean: Vec<f32>,
    std: Vec<f32>,
    bgr: bool,
    resize: bool,
    /// Whether the model input has a channel dimension (rank 4) or not (rank 3).
    has_channel_dim: bool,
    model: String,
}

fn per_channel(
    v: &Option<Vec<f32>>,
    channels: usize,
    default: f32,
    what: &str,
) -> Result<Vec<f32>> {
    match v {
        None => Ok(vec![default; channels]),
        Some(x) if x.len() == 1 => Ok(vec![x[0]; channels]),
        Some(x) if x.len() == channels => Ok(x.clone()),
        Some(x) => Err(EvalError::input(format!(
            "preprocessing.{what} has {} values but the model takes {channels} channels",
            x.len()
        ))),
    }
}

impl ImagePlan {
    pub fn new(input: &InputSpec, pre: &Preprocess) -> Result<ImagePlan> {
        let d = &input.dims;
        let model = input.describe();
        let (layout, c, h, w, has_channel_dim) = match d.len() {
            4 => {
                let layout = pre.layout.unwrap_or(
                    if !matches!(d[1], Some(1 | 3)) && matches!(d[3], Some(1 | 3)) {
                        Layout::Nhwc
                    } else {
                        Layout::Nchw
                    },
                );
                match layout {
                    Layout::Nchw => (layout, d[1], d[2], d[3], true),
                    Layout::Nhwc => (layout, d[3], d[1], d[2], true),
                }
            }
            3 => (Layout::Nchw, Some(1), d[1], d[2], false),
            _ => {
                return Err(EvalError::input(format!(
                    "image models need a 3- or 4-dimensional input, but the model's is {model}"
                )))
            }
        };
        let channels = c.ok_or_else(|| {
            EvalError::input(format!("the model input {model} leaves its channels open"))
        })?;
        if channels != 1 && channels != 3 {
            return Err(EvalError::input(format!(
                "the model input {model} has {channels} channels; images give 1 (grey) or 3 (colour)"
            )));
        }
        let (height, width) = match (pre.resize, h, w) {
            (Some([rh, rw]), _, _) => {
                for (m, r, what) in [(h, rh, "height"), (w, rw, "width")] {
                    if m.is_some_and(|m| m != r as usize) {
                        return Err(EvalError::input(format!(
                            "preprocessing.resize {what} {r} differs from the model input {model}"
                        )));
                    }
                }
                (rh as usize, rw as usize)
            }
            (None, Some(h), Some(w)) => (h, w),
            _ => {
                return Err(EvalError::input(format!(
                    "the model input {model} leaves its image size open; declare \
                     preprocessing.resize: [height, width]"
                )))
            }
        };
        Ok(ImagePlan {
            layout,
            channels,
            height,
            width,
            scale: pre.scale.unwrap_or(1.0 / 255.0),
            mean: per_channel(&pre.mean, channels, 0.0, "mean")?,
            std: per_channel(&pre.std, channels, 1.0, "std")?,
            bgr: pre.channel_order == Some(ChannelOrder::Bgr),
            resize: pre.resize.is_some(),
            has_channel_dim,
            model,
        })
    }

    /// The model input shape for a batch.
    pub fn shape(&self, batch: usize) -> Vec<usize> {
        match (self.has_channel_dim, self.layout) {
            (false, _) => vec![batch, self.height, self.width],
            (true, Layout::Nchw) => vec![batch, self.channels, self.height, self.width],
            (true, Layout::Nhwc) => vec![batch, self.height, self.width, self.channels],
        }
    }

    pub fn sample_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Writes one image into `out` (`sample_len` floats).
    pub fn write(&self, img: &DynamicImage, out: &mut [f32], origin: &str) -> Result<()> {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let resized;
        let img = if (w, h) == (self.width, self.height) {
            img
        } else if self.resize {
            resized = img.resize_exact(self.width as u32, self.height as u32, FilterType::Triangle);
            &resized
        } else {
            return Err(EvalError::input(format!(
                "{origin}: the image is {w}×{h} but the model input {} takes {}×{}; declare \
                 preprocessing.resize to resize images",
                self.model, self.width, self.height
            )));
        };
        let (hw, c) = (self.height * self.width, self.channels);
        let mut put = |pixel: usize, ch: usize, v: u8| {
            let x = (f32::from(v) * self.scale - self.mean[ch]) / self.std[ch];
            let at = match self.layout {
                Layout::Nchw => ch * hw + pixel,
                Layout::Nhwc => pixel * c + ch,
            };
            out[at] = x;
        };
        if c == 1 {
            for (i, p) in img.to_luma8().as_raw().iter().enumerate() {
                put(i, 0, *p);
            }
        } else {
            for (i, px) in img.to_rgb8().as_raw().chunks_exact(3).enumerate() {
                let (r, g, b) = (px[0], px[1], px[2]);
                let ordered = if self.bgr { [b, g, r] } else { [r, g, b] };
                for (ch, v) in ordered.into_iter().enumerate() {
                    put(i, ch, v);
                }
            }
        }
        Ok(())
    }
}

/// How one row of a table becomes the model input.
#[derive(Debug, Clone)]
pub struct RowPlan {
    pub features: usize,
    model: String,
}

impl RowPlan {
    /// `features` comes from the model when it fixes it, else from the first row.
    pub fn new(input: &InputSpec, first_row: usize) -> Result<RowPlan> {
        let model = input.describe();
        if input.dims.len() != 2 {
            return Err(EvalError::input(format!(
                "tabular models need a 2-dimensional input [batch, features], but the model's \
                 is {model}"
            )));
        }
        Ok(RowPlan {
            features: input.dims[1].unwrap_or(first_row),
            model,
        })
    }

    pub fn shape(&self, batch: usize) -> Vec<usize> {
        vec![batch, self.features]
    }

    pub fn write(&self, row: &[f32], out: &mut [f32], origin: &str) -> Result<()> {
        if row.len() != self.features {
            return Err(EvalError::input(format!(
                "{origin}: {} feature columns but the model input {} takes {}",
                row.len(),
                self.model,
                self.features
            )));
        }
        out.copy_from_slice(row);
        Ok(())
    }
}

/// Either plan, chosen by the task.
#[derive(Debug, Clone)]
pub enum Plan {
    Image(ImagePlan),
    Row(RowPlan),
}

impl Plan {
    pub fn shape(&self, batch: usize) -> Vec<usize> {
        match self {
            Plan::Image(p) => p.shape(batch),
            Plan::Row(p) => p.shape(batch),
        }
    }

    pub fn sample_len(&self) -> usize {
        match self {
            Plan::Image(p) => p.sample_len(),
            Plan::Row(p) => p.features,
        }
    }

    pub fn write(&self, f: &Features, out: &mut [f32], origin: &str) -> Result<()> {
        match (self, f) {
            (Plan::Image(p), Features::Image(img)) => p.write(img, out, origin),
            (Plan::Row(p), Features::Row(r)) => p.write(r, out, origin),
            (Plan::Image(_), Features::Row(_)) => Err(EvalError::input(format!(
                "{origin}: an image task got a row of numbers"
            ))),
            (Plan::Row(_), Features::Image(_)) => Err(EvalError::input(format!(
                "{origin}: a tabular task got an image"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, RgbImage};

    fn spec(dims: &[Option<usize>]) -> InputSpec {
        InputSpec {
            name: "x".into(),
            dims: dims.to_vec(),
        }
    }

    #[test]
    fn normalises_grey_images_in_nchw() {
        let plan = ImagePlan::new(
            &spec(&[Some(1), Some(1), Some(2), Some(2)]),
            &Preprocess {
                mean: Some(vec![0.5]),
                std: Some(vec![0.5]),
                ..Preprocess::default()
            },
        )
        .unwrap();
        let img =
            DynamicImage::ImageLuma8(GrayImage::from_raw(2, 2, vec![0, 255, 0, 255]).unwrap());
        let mut out = vec![0.0; 4];
        plan.write(&img, &mut out, "t").unwrap();
        assert_eq!(out, vec![-1.0, 1.0, -1.0, 1.0]);
    }

    #[test]
    fn colour_layouts_and_bgr() {
        let img = DynamicImage::ImageRgb8(
            RgbImage::from_raw(1, 2, vec![10, 20, 30, 40, 50, 60]).unwrap(),
        );
        let pre = Preprocess {
            scale: Some(1.0),
            channel_order: Some(ChannelOrder::Bgr),
            ..Preprocess::default()
        };
        let nchw = ImagePlan::new(&spec(&[None, Some(3), Some(2), Some(1)]), &pre).unwrap();
        let mut out = vec![0.0; 6];
        nchw.write(&img, &mut out, "t").unwrap();
        assert_eq!(out, vec![30.0, 60.0, 20.0, 50.0, 10.0, 40.0]);
        let nhwc = ImagePlan::new(&spec(&[None, Some(2), Some(1), Some(3)]), &pre).unwrap();
        assert_eq!(nhwc.shape(4), vec![4, 2, 1, 3]);
        nhwc.write(&img, &mut out, "t").unwrap();
        assert_eq!(out, vec![30.0, 20.0, 10.0, 60.0, 50.0, 40.0]);
    }

    #[test]
    fn size_mismatch_names_both_sizes_unless_resizing() {
        let input = spec(&[Some(1), Some(1), Some(28), Some(28)]);
        let img = DynamicImage::ImageLuma8(GrayImage::new(32, 30));
        let mut out = vec![0.0; 28 * 28];
        let err = ImagePlan::new(&input, &Preprocess::default())
            .unwrap()
            .write(&img, &mut out, "test/7/a.png")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("test/7/a.png") && err.contains("32×30") && err.contains("28×28"),
            "{err}"
        );
        let resize = Preprocess {
            resize: Some([28, 28]),
            ..Preprocess::default()
        };
        ImagePlan::new(&input, &resize)
            .unwrap()
            .write(&img, &mut out, "t")
            .unwrap();
    }

    #[test]
    fn rows_must_match_the_feature_count() {
        let plan = RowPlan::new(&spec(&[None, Some(3)]), 2).unwrap();
        let mut out = vec![0.0; 3];
        let err = plan
            .write(&[1.0, 2.0], &mut out, "a.csv row 4")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a.csv row 4") && err.contains("2 feature"),
            "{err}"
        );
    }
}
