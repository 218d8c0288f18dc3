#!/usr/bin/env python3
"""onnxruntime's side of `modelyard bench eval`.

Loads the float32 input tensors that the Rust side wrote (exactly what modelyard's evaluator
feeds tract), runs them one sample at a time through an onnxruntime InferenceSession with one
intra-op and one inter-op thread and sequential execution, and times each `run` alone with
time.perf_counter (every sample once, no warm-up, as modelyard's evaluator does). Prints one
JSON object: samples, images_per_s, p50_ms, p95_ms, accuracy (when labels are given) and the
onnxruntime version. The caller pins the process to one core (taskset).
"""

import argparse
import json
import math
import time

import numpy as np
import onnxruntime as ort


def quantile(sorted_values, q):
    """Nearest rank, as modelyard's evaluator computes it."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="the .onnx file")
    p.add_argument("--inputs", required=True, help="little-endian float32 samples, back to back")
    p.add_argument("--shape", required=True, help="one sample's input shape, e.g. 1,1,28,28")
    p.add_argument("--labels", help="one byte per sample: the class, to report accuracy")
    a = p.parse_args()

    shape = tuple(int(d) for d in a.shape.split(","))
    per = math.prod(shape)
    data = np.fromfile(a.inputs, dtype="<f4")
    if data.size == 0 or data.size % per:
        raise SystemExit(f"{a.inputs}: {data.size} floats is not a whole number of {shape} samples")
    n = data.size // per
    data = data.reshape((n,) + shape)
    labels = np.fromfile(a.labels, dtype=np.uint8) if a.labels else None

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3  # the light models' unused initializers make it warn
    sess = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name

    times = []
    correct = 0
    for i in range(n):
        x = data[i]
        t = time.perf_counter()
        out = sess.run(None, {name: x})[0]
        times.append(time.perf_counter() - t)
        if labels is not None:
            correct += int(np.argmax(out.reshape(-1)) == labels[i])

    ms = sorted(t * 1e3 for t in times)
    result = {
        "samples": n,
        "images_per_s": n / sum(times),
        "p50_ms": quantile(ms, 0.5),
        "p95_ms": quantile(ms, 0.95),
        "onnxruntime": ort.__version__,
    }
    if labels is not None:
        result["accuracy"] = correct / n
    print(json.dumps(result))


if __name__ == "__main__":
    main()
