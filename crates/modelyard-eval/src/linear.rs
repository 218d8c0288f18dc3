//! Writes a linear ONNX model (`y = x·W + b`, a dynamic batch of `features` numbers in, `outputs`
//! numbers out): the smallest real model for a tabular classifier or regressor, used by tests
//! and examples.

use prost::Message;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::tensor_shape_proto::dimension::Value as Dim;
use tract_onnx::pb::tensor_shape_proto::Dimension;
use tract_onnx::pb::type_proto::{Tensor, Value as Type};
use tract_onnx::pb::{
    GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto,
    TypeProto, ValueInfoProto,
};

fn value(name: &str, dims: Vec<Dim>) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(Type::TensorType(Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .into_iter()
                        .map(|d| Dimension {
                            value: Some(d),
                            ..Dimension::default()
                        })
                        .collect(),
                }),
            })),
            ..TypeProto::default()
        }),
        ..ValueInfoProto::default()
    }
}

fn tensor(name: &str, dims: Vec<i64>, data: Vec<f32>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims,
        data_type: DataType::Float as i32,
        float_data: data,
        ..TensorProto::default()
    }
}

fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: output.into(),
        ..NodeProto::default()
    }
}

/// The bytes of an ONNX model computing `x·W + b`, with `weights` row-major
/// `[features][outputs]` and `bias` of length `outputs`.
pub fn linear_onnx(features: usize, outputs: usize, weights: &[f32], bias: &[f32]) -> Vec<u8> {
    assert_eq!(
        weights.len(),
        features * outputs,
        "weights are features × outputs"
    );
    assert_eq!(bias.len(), outputs, "one bias per output");
    let graph = GraphProto {
        name: "linear".into(),
        node: vec![
            node("MatMul", &["x", "W"], "xw"),
            node("Add", &["xw", "b"], "y"),
        ],
        initializer: vec![
            tensor("W", vec![features as i64, outputs as i64], weights.to_vec()),
            tensor("b", vec![outputs as i64], bias.to_vec()),
        ],
        input: vec![value(
            "x",
            vec![Dim::DimParam("N".into()), Dim::DimValue(features as i64)],
        )],
        output: vec![value(
            "y",
            vec![Dim::DimParam("N".into()), Dim::DimValue(outputs as i64)],
        )],
        ..GraphProto::default()
    };
    ModelProto {
        ir_version: 7,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        producer_name: "modelyard".into(),
        graph: Some(graph),
        ..ModelProto::default()
    }
    .encode_to_vec()
}
