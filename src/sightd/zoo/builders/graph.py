"""A small helper over onnx.helper: unique names, initialisers from NumPy, and deterministic models.

Every zoo model is written with a fixed IR version and opset and serialised deterministically, so the same
weights always give the same bytes, hence the same fingerprint.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8
PRODUCER = "sightd.zoo"

Dim = int | str


class Graph:
    def __init__(self, name: str) -> None:
        self.name = name
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self._used: set[str] = set()

    def _unique(self, hint: str) -> str:
        name, n = hint, 1
        while name in self._used:
            n += 1
            name = f"{hint}_{n}"
        self._used.add(name)
        return name

    def input(self, name: str, shape: Sequence[Dim], elem_type: int = TensorProto.FLOAT) -> str:
        self._used.add(name)
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, list(shape)))
        return name

    def output(
        self, name: str, source: str, shape: Sequence[Dim | None], elem_type: int = TensorProto.FLOAT
    ) -> str:
        """Exposes ``source`` as a graph output called ``name`` (through an Identity when they differ)."""
        if source != name:
            self._used.add(name)
            self.nodes.append(helper.make_node("Identity", [source], [name], name=f"{name}/identity"))
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, list(shape)))
        return name

    def const(self, hint: str, value: np.ndarray | Sequence[float] | Sequence[int] | float | int) -> str:
        array = np.asarray(value)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        name = self._unique(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def ints(self, hint: str, values: Sequence[int]) -> str:
        return self.const(hint, np.asarray(values, dtype=np.int64))

    def op(self, op_type: str, inputs: Sequence[str], hint: str, **attributes: Any) -> str:
        return self.op_n(op_type, inputs, hint, 1, **attributes)[0]

    def op_n(
        self, op_type: str, inputs: Sequence[str], hint: str, count: int, **attributes: Any
    ) -> list[str]:
        base = self._unique(hint)
        outputs = [base] if count == 1 else [f"{base}:{i}" for i in range(count)]
        self._used.update(outputs)
        self.nodes.append(helper.make_node(op_type, list(inputs), outputs, name=base, **attributes))
        return outputs

    def model(self, doc: str, metadata: dict[str, str] | None = None) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.initializers)
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name=PRODUCER,
            doc_string=doc,
        )
        model.ir_version = IR_VERSION
        for key, value in sorted((metadata or {}).items()):
            model.metadata_props.add(key=key, value=value)
        onnx.checker.check_model(model, full_check=True)
        return model


def serialize(model: onnx.ModelProto) -> bytes:
    """Deterministic bytes of a model: the same proto always gives the same bytes (and fingerprint)."""
    data: bytes = model.SerializeToString(deterministic=True)
    return data


def prune(model: onnx.ModelProto) -> None:
    """Removes the nodes and initialisers no graph output depends on (in place)."""
    graph = model.graph
    needed = {o.name for o in graph.output}
    kept: list[onnx.NodeProto] = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(i for i in node.input if i)
            for attribute in node.attribute:  # subgraphs (If/Loop) read outer names too
                for sub in [attribute.g, *attribute.graphs]:
                    needed.update(i for n in sub.node for i in n.input)
    kept.reverse()
    del graph.node[:]
    graph.node.extend(kept)
    initializers = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    value_info = [v for v in graph.value_info if v.name in needed]
    del graph.value_info[:]
    graph.value_info.extend(value_info)
