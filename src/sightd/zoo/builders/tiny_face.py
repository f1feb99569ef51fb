"""face-api.js's tiny face detector as a YOLOv2 ``[region]`` network with darknet's exact output layout.

Forward pass (face-api.js ``TinyYolov2Base.runMobilenet`` with ``isFirstLayerConv2d``): conv0 3x3 "valid" +
bias, leaky 0.1; maxpool 2/2 "same"; conv1..conv5: depthwise 3x3 "same" + pointwise 1x1 + bias, leaky 0.1,
each followed by maxpool 2/2 "same" except conv5's, which is 2/1 "same" (pads right/bottom); conv8 1x1 ->
5 anchors x (tx, ty, tw, th, objectness). TensorFlow.js filters are HWIO and become ONNX's OIHW.

Darknet's region layout has ``5 + classes`` channels per anchor; face-api's model has no class channel (one
class). A constant class logit of 0 is appended to each anchor, so a region decoder's softmax over the one
class gives 1 and the score is sigmoid(objectness), exactly face-api's score. Output ``region``
[N, 5 * 6, H/32, W/32], channel = anchor * 6 + field.
"""

from __future__ import annotations

import numpy as np
import onnx

from sightd.zoo.builders.graph import Graph

INPUT = "input"
OUTPUT = "region"
SIZE = 416
ANCHORS = (
    (1.603231, 2.094468),
    (6.041143, 7.080126),
    (2.882459, 3.518061),
    (4.266906, 5.178857),
    (9.041765, 10.66308),
)
LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")


def _hwio_to_oihw(filters: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(filters.transpose(3, 2, 0, 1)).astype(np.float32)


def _leaky(g: Graph, x: str, hint: str) -> str:
    return g.op("LeakyRelu", [x], f"{hint}/leaky", alpha=0.10000000149011612)


def _maxpool(g: Graph, x: str, stride: int, hint: str) -> str:
    # TensorFlow "same" pooling with a 2x2 window pads only at the bottom/right, when the size needs it.
    pads = [0, 0, 1, 1] if stride == 1 else [0, 0, 0, 0]
    extra: dict[str, int] = {} if stride == 1 else {"ceil_mode": 1}
    return g.op(
        "MaxPool", [x], f"{hint}/pool", kernel_shape=[2, 2], strides=[stride, stride], pads=pads, **extra
    )


def build(tensors: dict[str, np.ndarray]) -> onnx.ModelProto:
    used: set[str] = set()

    def weight(name: str) -> np.ndarray:
        used.add(name)
        return tensors[name]

    g = Graph("tiny_face_detector")
    x = g.input(INPUT, ["N", 3, SIZE, SIZE])
    x = g.op(
        "Conv",
        [
            x,
            g.const("conv0/filters", _hwio_to_oihw(weight("conv0/filters"))),
            g.const("conv0/bias", weight("conv0/bias")),
        ],
        "conv0",
        kernel_shape=[3, 3],
    )
    x = _maxpool(g, _leaky(g, x, "conv0"), 2, "conv0")
    for layer in LAYERS:
        depthwise = weight(f"{layer}/depthwise_filter")  # [3, 3, C, 1]
        channels = depthwise.shape[2]
        x = g.op(
            "Conv",
            [x, g.const(f"{layer}/depthwise", depthwise.transpose(2, 3, 0, 1).astype(np.float32))],
            f"{layer}/depthwise",
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
            group=channels,
        )
        x = g.op(
            "Conv",
            [
                x,
                g.const(f"{layer}/pointwise", _hwio_to_oihw(weight(f"{layer}/pointwise_filter"))),
                g.const(f"{layer}/bias", weight(f"{layer}/bias")),
            ],
            f"{layer}/pointwise",
        )
        x = _maxpool(g, _leaky(g, x, layer), 1 if layer == "conv5" else 2, layer)
    x = g.op(
        "Conv",
        [
            x,
            g.const("conv8/filters", _hwio_to_oihw(weight("conv8/filters"))),
            g.const("conv8/bias", weight("conv8/bias")),
        ],
        "conv8",
    )
    if set(tensors) != used:
        raise ValueError(f"weights the architecture does not use: {sorted(set(tensors) - used)}")
    anchors, grid = len(ANCHORS), SIZE // 32
    # [N, 5 * 5, H, W] -> [N, 5, 5, H, W], append a zero class logit per anchor -> [N, 5 * 6, H, W].
    x = g.op("Reshape", [x, g.ints("shape", [0, anchors, 5, grid, grid])], "per_anchor")
    objectness = g.op(
        "Slice", [x, g.ints("start", [4]), g.ints("end", [5]), g.ints("axis", [2])], "objectness"
    )
    class_logit = g.op("Mul", [objectness, g.const("zero", np.array(0.0, np.float32))], "class_logit")
    x = g.op("Concat", [x, class_logit], "with_class", axis=2)
    x = g.op("Reshape", [x, g.ints("shape", [0, anchors * 6, grid, grid])], "region_layout")
    g.output(OUTPUT, x, ["N", anchors * 6, grid, grid])
    return g.model(
        "face-api.js tiny face detector (vladmandic/face-api), YOLOv2 region layout with one class; "
        "converted by sightd.zoo from its uint8-quantised weights.",
        {"input_size": f"{SIZE}x{SIZE}"},
    )
