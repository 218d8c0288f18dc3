//! Loading an ONNX model with tract and running it on batches of one input.

use std::path::Path;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::plan::SimpleState;
use tract_onnx::tract_hir::infer::Factoid;

use crate::error::{EvalError, Result};

/// The model input modelyard feeds: its name and dimensions (`None` where the model leaves a
/// dimension open, such as a dynamic batch).
#[derive(Debug, Clone, PartialEq)]
pub struct InputSpec {
    pub name: String,
    pub dims: Vec<Option<usize>>,
}

impl InputSpec {
    /// `[1, 1, 28, 28]` or `[N, 3, 224, 224]`.
    pub fn describe(&self) -> String {
        let dims: Vec<String> = self
            .dims
            .iter()
            .map(|d| d.map_or("N".into(), |v| v.to_string()))
            .collect();
        format!("{} [{}]", self.name, dims.join(", "))
    }
}

/// A model's outputs for one batch: a row of `cols` numbers per sample.
#[derive(Debug, Clone)]
pub struct Output {
    pub data: Vec<f32>,
    pub cols: usize,
}

impl Output {
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
}

/// A loaded model, optimised for one concrete input shape once [`Model::prepare`] has run.
pub struct Model {
    graph: Option<InferenceModel>,
    index: usize,
    input: InputSpec,
    /// The optimised plan's run state, reused across batches (no per-batch set-up).
    state: Option<SimpleState<TypedFact, Box<dyn TypedOp>>>,
    shape: Vec<usize>,
}

impl Model {
    /// Reads an ONNX file; `input_name` picks among several inputs.
    pub fn load(path: &Path, input_name: Option<&str>) -> Result<Model> {
        let graph = tract_onnx::onnx()
            .model_for_path(path)
            .map_err(|e| EvalError::model(format!("{}: {e:#}", path.display())))?;
        let outlets = graph.input_outlets().map_err(EvalError::model)?.to_vec();
        let names: Vec<String> = outlets
            .iter()
            .map(|o| graph.node(o.node).name.clone())
            .collect();
        // One input is fed; a name, when given, must be that input's.
        let index = match (names.as_slice(), input_name) {
            ([], _) => return Err(EvalError::model("the model has no inputs")),
            ([only], Some(n)) if only != n => {
                return Err(EvalError::input(format!(
                    "the model has no input {n:?}; its input is {only}"
                )))
            }
            ([_], _) => 0,
            (many, _) => {
                return Err(EvalError::input(format!(
                    "the model has {} inputs ({}); modelyard eval feeds models with one input",
                    many.len(),
                    many.join(", ")
                )))
            }
        };
        let fact = graph.input_fact(index).map_err(EvalError::model)?;
        let dims = fact
            .shape
            .dims()
            .map(|d| {
                d.concretize()
                    .and_then(|t| t.to_i64().ok())
                    .filter(|v| *v > 0)
                    .map(|v| v as usize)
            })
            .collect();
        Ok(Model {
            graph: Some(graph),
            index,
            input: InputSpec {
                name: names[index].clone(),
                dims,
            },
            state: None,
            shape: Vec::new(),
        })
    }

    pub fn input(&self) -> &InputSpec {
        &self.input
    }

    /// Fixes the input shape (batch included) and optimises the model for it.
    pub fn prepare(&mut self, shape: &[usize]) -> Result<()> {
        let graph = self
            .graph
            .take()
            .ok_or_else(|| EvalError::model("the model was already prepared"))?;
        let plan = graph
            .with_input_fact(self.index, f32::fact(shape).into())
            .and_then(|g| g.into_optimized())
            .and_then(|mut g| {
                crate::pool::swap_in(&mut g)?;
                Ok(g)
            })
            .and_then(|g| g.into_runnable())
            .map_err(|e| {
                EvalError::model(format!(
                    "cannot run the model at input shape {shape:?} (the model declares {}): {e:#}",
                    self.input.describe()
                ))
            })?;
        let state: SimpleState<TypedFact, Box<dyn TypedOp>> =
            plan.spawn().map_err(EvalError::model)?;
        self.state = Some(state);
        self.shape = shape.to_vec();
        Ok(())
    }

    /// Runs one batch (`data` laid out in the prepared shape) and returns the first output.
    pub fn run(&mut self, data: Vec<f32>) -> Result<Output> {
        let state = self
            .state
            .as_mut()
            .ok_or_else(|| EvalError::model("the model was not prepared"))?;
        let input = tract_ndarray::ArrayD::from_shape_vec(self.shape.clone(), data)
            .map_err(|e| EvalError::model(format!("input does not fit its shape: {e}")))?
            .into_tensor();
        let outputs = state
            .run(tvec!(input.into()))
            .map_err(|e| EvalError::model(format!("inference failed: {e:#}")))?;
        let out = outputs
            .first()
            .ok_or_else(|| EvalError::model("the model produced no output"))?;
        let out = out
            .cast_to::<f32>()
            .map_err(|e| EvalError::model(format!("output is not numeric: {e:#}")))?;
        let view = out.to_plain_array_view::<f32>().map_err(EvalError::model)?;
        let batch = self.shape[0];
        let shape = view.shape().to_vec();
        let total: usize = shape.iter().product();
        if shape.first() != Some(&batch) || !total.is_multiple_of(batch) {
            return Err(EvalError::model(format!(
                "output shape {shape:?} does not start with the batch size {batch}"
            )));
        }
        Ok(Output {
            data: view.iter().copied().collect(),
            cols: total / batch,
        })
    }
}
