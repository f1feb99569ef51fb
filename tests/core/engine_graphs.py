"""Small ONNX graphs built with onnx.helper for the engine and pipeline tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

Dim = int | str | None


def value(name: str, elem_type: int, shape: Sequence[Dim] | None) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem_type, None if shape is None else list(shape))


def model_bytes(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[onnx.ValueInfoProto],
    outputs: Sequence[onnx.ValueInfoProto],
    initializers: Sequence[tuple[str, np.ndarray]] = (),
) -> bytes:
    tensors = [numpy_helper.from_array(array, name) for name, array in initializers]
    graph = helper.make_graph(list(nodes), "test", list(inputs), list(outputs), initializer=tensors)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def affine(batch: Dim = "batch", features: int = 3) -> bytes:
    """y = 2 x + 1 on (batch, features) float32."""
    return model_bytes(
        [
            helper.make_node("Mul", ["x", "two"], ["twice"]),
            helper.make_node("Add", ["twice", "one"], ["y"]),
        ],
        [value("x", TensorProto.FLOAT, [batch, features])],
        [value("y", TensorProto.FLOAT, [batch, features])],
        [("two", np.array(2.0, np.float32)), ("one", np.array(1.0, np.float32))],
    )


def two_inputs() -> bytes:
    """sum = a + b, product = a * b on (N, 4) float32."""
    return model_bytes(
        [helper.make_node("Add", ["a", "b"], ["sum"]), helper.make_node("Mul", ["a", "b"], ["product"])],
        [value("a", TensorProto.FLOAT, ["N", 4]), value("b", TensorProto.FLOAT, ["N", 4])],
        [value("sum", TensorProto.FLOAT, ["N", 4]), value("product", TensorProto.FLOAT, ["N", 4])],
    )


def uint8_to_argmax() -> bytes:
    """pixels (N, 5) uint8 -> scaled = pixels / 255 (float32), best = argmax over axis 1 (int64, (N,))."""
    return model_bytes(
        [
            helper.make_node("Cast", ["pixels"], ["as_float"], to=TensorProto.FLOAT),
            helper.make_node("Div", ["as_float", "scale"], ["scaled"]),
            helper.make_node("ArgMax", ["pixels"], ["best"], axis=1, keepdims=0),
        ],
        [value("pixels", TensorProto.UINT8, ["N", 5])],
        [value("scaled", TensorProto.FLOAT, ["N", 5]), value("best", TensorProto.INT64, ["N"])],
        [("scale", np.array(255.0, np.float32))],
    )


def matmul_chain(size: int = 96, depth: int = 6, seed: int = 0) -> bytes:
    """A few dense layers (tanh) on (N, size): enough work per run for concurrent runs to overlap."""
    rng = np.random.default_rng(seed)
    nodes = []
    initializers = []
    previous = "x"
    for layer in range(depth):
        weight = (rng.standard_normal((size, size)) / np.sqrt(size)).astype(np.float32)
        initializers.append((f"w{layer}", weight))
        out = "y" if layer == depth - 1 else f"h{layer}"
        nodes += [
            helper.make_node("MatMul", [previous, f"w{layer}"], [f"m{layer}"]),
            helper.make_node("Tanh", [f"m{layer}"], [out]),
        ]
        previous = out
    return model_bytes(
        nodes,
        [value("x", TensorProto.FLOAT, ["N", size])],
        [value("y", TensorProto.FLOAT, ["N", size])],
        initializers,
    )
