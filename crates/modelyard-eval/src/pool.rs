//! A 2×2, stride-2 max pool swapped into optimised tract plans in place of tract's own.
//!
//! tract 0.23 evaluates that pool (the commonest one: LeNet, VGG, MNIST-style nets) one output
//! at a time with bounds checks around each scalar max; it is a fifth of mnist-8's time on one
//! core. This kernel reads each pair of input rows once, four taps per output in a loop the
//! compiler vectorises, folding the taps in tract's order from the same starting value, so the
//! outputs are bit for bit tract's (NaN and infinities included; tested below).

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::{OptMaxPool, PaddingSpec};
use tract_onnx::tract_core::ops::nn::DataFormat;

/// Max over non-overlapping 2×2 windows of an NCHW f32 tensor; an odd last row or column is
/// dropped, as an unpadded pool does.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub struct MaxPool2x2;

impl Op for MaxPool2x2 {
    fn name(&self) -> StaticName {
        "MaxPool2x2".into()
    }

    tract_onnx::tract_core::op_as_typed_op!();
}

impl EvalOp for MaxPool2x2 {
    tract_onnx::tract_core::op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = inputs.first().context("MaxPool2x2 takes one input")?;
        let &[n, c, h, w] = input.shape() else {
            bail!("MaxPool2x2 takes NCHW input, got shape {:?}", input.shape());
        };
        let (oh, ow) = (h / 2, w / 2);
        let mut output = Tensor::zero::<f32>(&[n, c, oh, ow])?;
        {
            let input = input.try_as_plain_ram()?;
            let input = input.as_slice::<f32>()?;
            let mut out = output.try_as_plain_ram_mut()?;
            let out = out.as_slice_mut::<f32>()?;
            if oh > 0 && ow > 0 {
                pool_planes(input, out, h, w);
            }
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for MaxPool2x2 {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let fact = inputs.first().context("MaxPool2x2 takes one input")?;
        ensure!(fact.datum_type == f32::datum_type(), "MaxPool2x2 pools f32");
        ensure!(fact.rank() == 4, "MaxPool2x2 takes NCHW input");
        let mut shape: TVec<TDim> = fact.shape.iter().cloned().collect();
        shape[2] = shape[2].clone() / 2;
        shape[3] = shape[3].clone() / 2;
        Ok(tvec!(f32::fact(shape)))
    }

    as_op!();
}

/// Pools every `h`×`w` plane of `input` into the matching plane of `out`.
fn pool_planes(input: &[f32], out: &mut [f32], h: usize, w: usize) {
    let (oh, ow) = (h / 2, w / 2);
    for (plane, out_plane) in input.chunks_exact(h * w).zip(out.chunks_exact_mut(oh * ow)) {
        for (oy, out_row) in out_plane.chunks_exact_mut(ow).enumerate() {
            let top = &plane[2 * oy * w..][..2 * ow];
            let bottom = &plane[(2 * oy + 1) * w..][..2 * ow];
            for ((o, t), b) in out_row
                .iter_mut()
                .zip(top.chunks_exact(2))
                .zip(bottom.chunks_exact(2))
            {
                // tract's fold: from f32::MIN, taps row by row, `f32::max` each time.
                *o = f32::MIN.max(t[0]).max(t[1]).max(b[0]).max(b[1]);
            }
        }
    }
}

/// Whether `op`, pooling an input of `fact`, is a pool [`MaxPool2x2`] computes exactly.
fn replaceable(op: &OptMaxPool, fact: &TypedFact) -> bool {
    let spec = &op.pool_spec;
    let unpadded = match &spec.padding {
        PaddingSpec::Valid => true,
        PaddingSpec::Explicit(before, after)
        | PaddingSpec::ExplicitOnnxPool(before, after, false) => {
            before.iter().chain(after.iter()).all(|&p| p == 0)
        }
        _ => false,
    };
    op.with_index_outputs.is_none()
        && spec.data_format == DataFormat::NCHW
        && spec.kernel_shape[..] == [2, 2]
        && spec.strides.as_deref() == Some(&[2, 2][..])
        && spec
            .dilations
            .as_ref()
            .is_none_or(|d| d.iter().all(|&x| x == 1))
        && unpadded
        && fact.datum_type == f32::datum_type()
        && fact.rank() == 4
}

/// Replaces every tract 2×2 stride-2 unpadded f32 max pool in an optimised `model` with
/// [`MaxPool2x2`]; returns how many it replaced.
pub fn swap_in(model: &mut TypedModel) -> TractResult<usize> {
    let mut swapped = 0;
    loop {
        let mut patch = None;
        for node in model.nodes() {
            let Some(op) = node.op_as::<OptMaxPool>() else {
                continue;
            };
            let fact = model.outlet_fact(node.inputs[0])?;
            if !replaceable(op, fact) {
                continue;
            }
            // Same output fact or leave it: the swap must not change a shape downstream.
            let ours = MaxPool2x2.output_facts(&[fact])?;
            if ours[0] != *model.outlet_fact(node.id.into())? {
                continue;
            }
            let mut p = TypedModelPatch::new("2x2 max pool kernel");
            let input = p.tap_model(model, node.inputs[0])?;
            let output = p.wire_node(&node.name, MaxPool2x2, &[input])?[0];
            p.shunt_outside(model, node.id.into(), output)?;
            patch = Some(p);
            break;
        }
        match patch {
            Some(p) => {
                p.apply(model)?;
                swapped += 1;
            }
            None => return Ok(swapped),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::tract_core::ops::cnn::{MaxPool, PoolSpec};

    /// A one-node model pooling `[n, c, h, w]` with `kernel`, `strides` and `padding`.
    fn pool_model(
        shape: [usize; 4],
        kernel: usize,
        stride: usize,
        padding: PaddingSpec,
    ) -> TypedModel {
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact(shape)).unwrap();
        let spec = PoolSpec {
            data_format: DataFormat::NCHW,
            kernel_shape: tvec![kernel, kernel],
            padding,
            dilations: None,
            strides: Some(tvec![stride, stride]),
            input_channels: shape[1],
            output_channels: shape[1],
        };
        let op = MaxPool {
            pool_spec: spec,
            with_index_outputs: None,
        };
        let y = model.wire_node("pool", op, &[x]).unwrap();
        model.select_output_outlets(&y).unwrap();
        model.into_optimized().unwrap()
    }

    fn run(model: TypedModel, input: &Tensor) -> Tensor {
        let plan = model.into_runnable().unwrap();
        let out = plan.run(tvec!(input.clone().into())).unwrap();
        out[0].clone().into_tensor()
    }

    /// Seeded values with the awkward ones mixed in.
    fn input(shape: [usize; 4]) -> Tensor {
        let len: usize = shape.iter().product();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let values: Vec<f32> = (0..len)
            .map(|i| match i % 37 {
                3 => f32::NAN,
                11 => f32::NEG_INFINITY,
                19 => f32::INFINITY,
                23 => -0.0,
                29 => f32::MIN,
                _ => {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
                }
            })
            .collect();
        tract_ndarray::ArrayD::from_shape_vec(shape.to_vec(), values)
            .unwrap()
            .into_tensor()
    }

    fn bits(t: &Tensor) -> Vec<u32> {
        let view = t.to_plain_array_view::<f32>().unwrap();
        view.iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn matches_tracts_own_pool_bit_for_bit() {
        for shape in [[1, 8, 28, 28], [2, 3, 7, 9], [1, 1, 2, 2], [3, 5, 3, 6]] {
            let x = input(shape);
            let theirs = pool_model(shape, 2, 2, PaddingSpec::Valid);
            let mut ours = theirs.clone();
            assert_eq!(swap_in(&mut ours).unwrap(), 1, "{shape:?}");
            assert!(ours
                .nodes()
                .iter()
                .all(|n| n.op_as::<OptMaxPool>().is_none()));
            let (a, b) = (run(theirs, &x), run(ours, &x));
            assert_eq!(a.shape(), b.shape(), "{shape:?}");
            assert_eq!(bits(&a), bits(&b), "{shape:?}");
        }
    }

    #[test]
    fn leaves_other_pools_to_tract() {
        let shape = [1, 2, 6, 6];
        for model in [
            pool_model(shape, 2, 1, PaddingSpec::Valid),
            pool_model(shape, 3, 2, PaddingSpec::Valid),
            pool_model(shape, 2, 2, PaddingSpec::SameUpper),
            pool_model(shape, 2, 2, PaddingSpec::Explicit(tvec![1, 1], tvec![0, 0])),
        ] {
            let mut m = model.clone();
            assert_eq!(swap_in(&mut m).unwrap(), 0);
        }
        let mut m = pool_model(shape, 2, 2, PaddingSpec::Explicit(tvec![0, 0], tvec![0, 0]));
        assert_eq!(swap_in(&mut m).unwrap(), 1);
    }
}
