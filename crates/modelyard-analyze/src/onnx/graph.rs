//! A checked, topologically sorted view of an ONNX graph with producer/consumer indices.

use std::collections::{HashMap, HashSet, VecDeque};

use tract_onnx::pb::{GraphProto, NodeProto, TensorProto};

use crate::AnalyzeError;

/// The graph with its nodes in an order where every input is defined before use.
pub struct GraphView<'a> {
    pub nodes: Vec<&'a NodeProto>,
    pub initializers: HashMap<&'a str, &'a TensorProto>,
    /// Value name → index (in `nodes`) of the node producing it.
    pub producer: HashMap<&'a str, usize>,
    /// Value name → (consumer node index, input slot).
    pub consumers: HashMap<&'a str, Vec<(usize, usize)>>,
    pub graph_outputs: HashSet<&'a str>,
}

impl<'a> GraphView<'a> {
    /// Checks that every node input is defined and the graph has no cycle, and sorts it.
    pub fn new(graph: &'a GraphProto) -> Result<Self, AnalyzeError> {
        let initializers: HashMap<&str, &TensorProto> = graph
            .initializer
            .iter()
            .map(|t| (t.name.as_str(), t))
            .collect();
        let mut defined: HashSet<&str> = initializers.keys().copied().collect();
        defined.extend(graph.input.iter().map(|i| i.name.as_str()));
        let mut made_by: HashMap<&str, usize> = HashMap::new();
        for (i, n) in graph.node.iter().enumerate() {
            for o in n.output.iter().filter(|o| !o.is_empty()) {
                made_by.insert(o.as_str(), i);
            }
        }
        // Kahn's algorithm over node dependencies; ties keep file order.
        let mut indegree = vec![0usize; graph.node.len()];
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); graph.node.len()];
        for (i, n) in graph.node.iter().enumerate() {
            for input in n.input.iter().filter(|x| !x.is_empty()) {
                match made_by.get(input.as_str()) {
                    Some(&p) => {
                        indegree[i] += 1;
                        dependents[p].push(i);
                    }
                    None if defined.contains(input.as_str()) => {}
                    None => {
                        return Err(AnalyzeError::InvalidOnnx(format!(
                            "node {:?} ({}) reads {input:?}, which nothing defines",
                            n.name, n.op_type
                        )))
                    }
                }
            }
        }
        let mut ready: VecDeque<usize> = (0..graph.node.len())
            .filter(|&i| indegree[i] == 0)
            .collect();
        let mut order = Vec::with_capacity(graph.node.len());
        while let Some(i) = ready.pop_front() {
            order.push(i);
            for &d in &dependents[i] {
                indegree[d] -= 1;
                if indegree[d] == 0 {
                    ready.push_back(d);
                }
            }
        }
        if order.len() != graph.node.len() {
            return Err(AnalyzeError::InvalidOnnx("the graph has a cycle".into()));
        }
        let nodes: Vec<&NodeProto> = order.iter().map(|&i| &graph.node[i]).collect();
        let mut producer = HashMap::new();
        let mut consumers: HashMap<&str, Vec<(usize, usize)>> = HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            for o in n.output.iter().filter(|o| !o.is_empty()) {
                producer.insert(o.as_str(), i);
            }
            for (slot, input) in n.input.iter().enumerate().filter(|(_, x)| !x.is_empty()) {
                consumers.entry(input.as_str()).or_default().push((i, slot));
            }
        }
        let graph_outputs = graph.output.iter().map(|o| o.name.as_str()).collect();
        Ok(Self {
            nodes,
            initializers,
            producer,
            consumers,
            graph_outputs,
        })
    }

    /// The constant tensor behind `name`: an initializer or a `Constant` node's value.
    pub fn constant(&self, name: &str) -> Option<&'a TensorProto> {
        match self.producer.get(name) {
            Some(&i) if self.nodes[i].op_type == "Constant" => {
                super::proto::attr_tensor(self.nodes[i], "value")
            }
            Some(_) => None,
            None => self.initializers.get(name).copied(),
        }
    }
}
