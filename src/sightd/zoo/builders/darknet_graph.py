"""A darknet network (cfg + weights) as an ONNX graph: the layers yolov3-tiny and its kin use.

Supported sections: ``[convolutional]`` (batch_normalize, filters, size, stride, pad, groups, activation
leaky | linear | relu | logistic), ``[maxpool]``, ``[upsample]``, ``[route]``, ``[shortcut]`` and ``[yolo]``.
Batch normalisation is folded into the convolution exactly as darknet computes it at inference:
``(x - mean) / (sqrt(var) + .000001) * scale + bias``. The ``[yolo]`` heads' inputs become the graph's
outputs, raw, one per head in cfg order; decoding them is the post-processing's business.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sightd.zoo.builders.graph import Graph
from sightd.zoo.readers.darknet import DarknetError, Section, WeightReader, Weights

INPUT = "input"


@dataclass(frozen=True)
class YoloHead:
    tensor: str  # the raw head tensor's name inside the graph
    grid_width: int
    grid_height: int
    stride: int  # input pixels per grid cell
    anchors: tuple[tuple[float, float], ...]  # in input pixels, for this head's mask
    classes: int


@dataclass(frozen=True)
class DarknetGraph:
    graph: Graph
    input_width: int
    input_height: int
    heads: tuple[YoloHead, ...]


@dataclass
class _Layer:
    tensor: str
    channels: int
    height: int
    width: int


def _activation(g: Graph, x: str, kind: str, hint: str) -> str:
    if kind == "leaky":
        return g.op("LeakyRelu", [x], f"{hint}/leaky", alpha=0.1)
    if kind == "relu":
        return g.op("Relu", [x], f"{hint}/relu")
    if kind == "logistic":
        return g.op("Sigmoid", [x], f"{hint}/logistic")
    if kind == "linear":
        return x
    raise DarknetError(f"unsupported activation {kind}")


def _convolutional(g: Graph, s: Section, previous: _Layer, reader: WeightReader, index: int) -> _Layer:
    filters, size, stride = s.get_int("filters"), s.get_int("size", 1), s.get_int("stride", 1)
    groups = s.get_int("groups", 1)
    padding = size // 2 if s.get_int("pad", 0) else s.get_int("padding", 0)
    channels_in = previous.channels // groups
    hint = f"conv{index}"
    bias = reader.take(filters)
    weight_shape = (filters, channels_in, size, size)
    if s.get_int("batch_normalize", 0):
        scale, mean, variance = reader.take(filters), reader.take(filters), reader.take(filters)
        weights = reader.take(int(np.prod(weight_shape)), weight_shape)
        factor = (scale / (np.sqrt(variance) + np.float32(0.000001))).astype(np.float32)
        weights = (weights * factor[:, None, None, None]).astype(np.float32)
        bias = (bias - mean * factor).astype(np.float32)
    else:
        weights = reader.take(int(np.prod(weight_shape)), weight_shape)
    y = g.op(
        "Conv",
        [previous.tensor, g.const(f"{hint}/weight", weights), g.const(f"{hint}/bias", bias)],
        hint,
        kernel_shape=[size, size],
        strides=[stride, stride],
        pads=[padding] * 4,
        group=groups,
    )
    y = _activation(g, y, s.options.get("activation", "logistic"), hint)
    height = (previous.height + 2 * padding - size) // stride + 1
    width = (previous.width + 2 * padding - size) // stride + 1
    return _Layer(y, filters, height, width)


def _maxpool(g: Graph, s: Section, previous: _Layer, index: int) -> _Layer:
    size, stride = s.get_int("size", s.get_int("stride", 1)), s.get_int("stride", 1)
    padding = s.get_int("padding", size - 1)
    # Darknet offsets the window by -padding/2 and skips cells outside the input: for a max that equals
    # padding with -inf, which is what ONNX MaxPool's pads do.
    begin, end = padding // 2, padding - padding // 2
    y = g.op(
        "MaxPool",
        [previous.tensor],
        f"maxpool{index}",
        kernel_shape=[size, size],
        strides=[stride, stride],
        pads=[begin, begin, end, end],
    )
    height = (previous.height + padding - size) // stride + 1
    width = (previous.width + padding - size) // stride + 1
    return _Layer(y, previous.channels, height, width)


def _route(g: Graph, s: Section, layers: list[_Layer], index: int) -> _Layer:
    sources = [layers[i if i >= 0 else index + i] for i in s.get_ints("layers")]
    if any(src.height != sources[0].height or src.width != sources[0].width for src in sources):
        raise DarknetError(f"route layer {index} joins maps of different sizes")
    if len(sources) == 1:
        return sources[0]
    y = g.op("Concat", [src.tensor for src in sources], f"route{index}", axis=1)
    return _Layer(y, sum(src.channels for src in sources), sources[0].height, sources[0].width)


def build(sections: list[Section], weights: Weights, name: str, batch: int | str = "N") -> DarknetGraph:
    """The network up to its heads; ``batch`` is the input's batch dimension (a symbol: any size)."""
    net = sections[0]
    width, height = net.get_int("width"), net.get_int("height")
    g = Graph(name)
    previous = _Layer(g.input(INPUT, [batch, net.get_int("channels", 3), height, width]), 3, height, width)
    reader = WeightReader(weights)
    layers: list[_Layer] = []
    heads: list[YoloHead] = []
    for index, s in enumerate(sections[1:]):
        if s.kind == "convolutional":
            layer = _convolutional(g, s, previous, reader, index)
        elif s.kind == "maxpool":
            layer = _maxpool(g, s, previous, index)
        elif s.kind == "upsample":
            factor = s.get_int("stride", 2)
            scales = g.const("upsample/scales", np.array([1, 1, factor, factor], dtype=np.float32))
            y = g.op("Resize", [previous.tensor, "", scales], f"upsample{index}", mode="nearest")
            layer = _Layer(y, previous.channels, previous.height * factor, previous.width * factor)
        elif s.kind == "route":
            layer = _route(g, s, layers, index)
        elif s.kind == "shortcut":
            source = layers[index + s.get_int("from")]
            y = g.op("Add", [previous.tensor, source.tensor], f"shortcut{index}")
            layer = _Layer(
                _activation(g, y, s.options.get("activation", "linear"), f"shortcut{index}"),
                previous.channels,
                previous.height,
                previous.width,
            )
        elif s.kind == "yolo":
            all_anchors = s.get_ints("anchors")
            pairs = [
                (float(all_anchors[2 * i]), float(all_anchors[2 * i + 1]))
                for i in range(len(all_anchors) // 2)
            ]
            mask = s.get_ints("mask") if "mask" in s.options else list(range(len(pairs)))
            classes = s.get_int("classes", 20)
            if previous.channels != len(mask) * (5 + classes):
                raise DarknetError(
                    f"yolo layer {index}: {previous.channels} channels for {len(mask)} anchors"
                )
            heads.append(
                YoloHead(
                    previous.tensor,
                    previous.width,
                    previous.height,
                    width // previous.width,
                    tuple(pairs[m] for m in mask),
                    classes,
                )
            )
            layer = previous
        else:
            raise DarknetError(f"unsupported darknet layer [{s.kind}]")
        layers.append(layer)
        previous = layer
    reader.finish()
    return DarknetGraph(g, width, height, tuple(heads))
