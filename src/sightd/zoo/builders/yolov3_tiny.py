"""Three networks from darknet's yolov3-tiny (COCO-80): raw YOLO heads, in-graph decoding + NMS, a tagger.

- ``build_heads``: the darknet network as it is; its two ``[yolo]`` heads are the outputs, for the
  post-processing's ``yolo_output`` (sigmoid classes).
- ``build_direct``: the same network followed by YOLOv3 box decoding, ONNX ``NonMaxSuppression`` and a
  top-100 selection, emitting what TensorFlow's Object Detection API emits: ``detection_boxes`` [1, 100, 4]
  (ymin, xmin, ymax, xmax, relative to the input tensor), ``detection_scores`` [1, 100],
  ``detection_classes`` [1, 100] (float, 1-based class ids: TF OD API label-map ids, 0 being the background)
  and ``num_detections`` [1].
  Rows past ``num_detections`` are zeros. One image per run (the batch dimension is 1).
- ``build_tagger``: the same network whose per-class score is the maximum, over every cell and anchor of
  both heads, of sigmoid(objectness) * sigmoid(class): a multi-label tagger, output ``tags`` [N, 80].
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto

from sightd.zoo.builders import darknet_graph
from sightd.zoo.builders.darknet_graph import DarknetGraph, YoloHead
from sightd.zoo.builders.graph import Graph
from sightd.zoo.readers.darknet import Section, Weights

MAX_DETECTIONS = 100
NMS_IOU_THRESHOLD = 0.45
# Candidates below this never leave the graph; it sits under the post-processing's default discard threshold.
NMS_SCORE_THRESHOLD = 0.01
TAGS_OUTPUT = "tags"
DIRECT_OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")


def head_output_name(head: YoloHead) -> str:
    return f"yolo_stride{head.stride}"


def _metadata(network: DarknetGraph) -> dict[str, str]:
    return {"input_size": f"{network.input_width}x{network.input_height}"}


def build_heads(sections: list[Section], weights: Weights) -> onnx.ModelProto:
    network = darknet_graph.build(sections, weights, "yolov3_tiny")
    for head in network.heads:
        channels = len(head.anchors) * (5 + head.classes)
        network.graph.output(
            head_output_name(head), head.tensor, ["N", channels, head.grid_height, head.grid_width]
        )
    return network.graph.model(
        "yolov3-tiny (darknet, COCO-80), raw YOLO heads; converted by sightd.zoo.", _metadata(network)
    )


def _slice(g: Graph, x: str, start: int, end: int, hint: str) -> str:
    return g.op("Slice", [x, g.ints("start", [start]), g.ints("end", [end]), g.ints("axis", [2])], hint)


def _decode(network: DarknetGraph) -> tuple[str, str]:
    """Boxes [N, M, 4] (ymin, xmin, ymax, xmax relative to the input) and scores [N, M, classes]."""
    g = network.graph
    all_boxes, all_scores = [], []
    for head in network.heads:
        anchors, cells = len(head.anchors), head.grid_width * head.grid_height
        depth, count = 5 + head.classes, len(head.anchors) * cells
        hint = head_output_name(head)
        x = g.op("Reshape", [head.tensor, g.ints("shape", [0, anchors, depth, cells])], f"{hint}/split")
        x = g.op("Transpose", [x], f"{hint}/cells_last", perm=[0, 1, 3, 2])
        x = g.op("Reshape", [x, g.ints("shape", [0, count, depth])], f"{hint}/flat")
        # Box order: anchor, then row, then column, as the reshape above lays them out.
        rows, cols = np.meshgrid(np.arange(head.grid_height), np.arange(head.grid_width), indexing="ij")
        grid = np.tile(np.stack([cols.ravel(), rows.ravel()], axis=1), (anchors, 1)).astype(np.float32)
        sizes = np.repeat(np.asarray(head.anchors, dtype=np.float32), cells, axis=0)
        sizes /= np.array([network.input_width, network.input_height], dtype=np.float32)
        grid_size = np.array([head.grid_width, head.grid_height], dtype=np.float32)
        xy = g.op("Sigmoid", [_slice(g, x, 0, 2, f"{hint}/txy")], f"{hint}/sxy")
        xy = g.op(
            "Div",
            [
                g.op("Add", [xy, g.const(f"{hint}/grid", grid[None])], f"{hint}/cxy"),
                g.const(f"{hint}/grid_size", grid_size),
            ],
            f"{hint}/xy",
        )
        wh = g.op("Exp", [_slice(g, x, 2, 4, f"{hint}/twh")], f"{hint}/ewh")
        wh = g.op("Mul", [wh, g.const(f"{hint}/anchors", sizes[None])], f"{hint}/wh")
        half = g.op("Mul", [wh, g.const("half", np.array(0.5, np.float32))], f"{hint}/half")
        swap = g.ints("yx", [1, 0])
        lo = g.op("Gather", [g.op("Sub", [xy, half], f"{hint}/min"), swap], f"{hint}/yx_min", axis=2)
        hi = g.op("Gather", [g.op("Add", [xy, half], f"{hint}/max"), swap], f"{hint}/yx_max", axis=2)
        all_boxes.append(g.op("Concat", [lo, hi], f"{hint}/boxes", axis=2))
        objectness = g.op("Sigmoid", [_slice(g, x, 4, 5, f"{hint}/tobj")], f"{hint}/objectness")
        classes = g.op("Sigmoid", [_slice(g, x, 5, depth, f"{hint}/tcls")], f"{hint}/classes")
        all_scores.append(g.op("Mul", [objectness, classes], f"{hint}/scores"))
    boxes = g.op("Concat", all_boxes, "boxes", axis=1)
    scores = g.op("Concat", all_scores, "scores", axis=1)
    return boxes, scores


def build_tagger(sections: list[Section], weights: Weights) -> onnx.ModelProto:
    network = darknet_graph.build(sections, weights, "yolov3_tiny_tagger")
    _, scores = _decode(network)
    tags = network.graph.op("ReduceMax", [scores], "max_over_boxes", axes=[1], keepdims=0)
    network.graph.output(TAGS_OUTPUT, tags, ["N", network.heads[0].classes])
    return network.graph.model(
        "COCO-80 tagger derived from yolov3-tiny: per class, the best sigmoid(objectness) * "
        "sigmoid(class) over every cell and anchor; converted by sightd.zoo.",
        _metadata(network),
    )


def build_direct(sections: list[Section], weights: Weights) -> onnx.ModelProto:
    network = darknet_graph.build(sections, weights, "yolov3_tiny_direct", batch=1)
    g = network.graph
    boxes, scores = _decode(network)
    per_class = g.op("Transpose", [scores], "scores_per_class", perm=[0, 2, 1])
    selected = g.op(
        "NonMaxSuppression",
        [
            boxes,
            per_class,
            g.ints("max_per_class", [MAX_DETECTIONS]),
            g.const("iou_threshold", np.array([NMS_IOU_THRESHOLD], np.float32)),
            g.const("score_threshold", np.array([NMS_SCORE_THRESHOLD], np.float32)),
        ],
        "nms",
        center_point_box=0,
    )
    selected_scores = g.op("GatherND", [per_class, selected], "selected_scores")
    found = g.op("Shape", [selected_scores], "found")
    kept = g.op("Min", [found, g.ints("max_detections", [MAX_DETECTIONS])], "kept")
    top_scores, order = g.op_n("TopK", [selected_scores, kept], "top", 2, axis=0, largest=1, sorted=1)
    top = g.op("Gather", [selected, order], "top_selected", axis=0)
    column = {
        k: g.op("Gather", [top, g.ints(f"col_{k}", [i])], f"top_{k}", axis=1)
        for k, i in (("cls", 1), ("box", 2))
    }
    box_index = g.op("Squeeze", [column["box"], g.ints("axis1", [1])], "box_index")
    class_id = g.op("Squeeze", [column["cls"], g.ints("axis1", [1])], "class_index")
    image_boxes = g.op("Squeeze", [boxes, g.ints("axis0", [0])], "image_boxes")
    top_boxes = g.op("Gather", [image_boxes, box_index], "top_boxes", axis=0)
    label_ids = g.op(
        "Add",
        [
            g.op("Cast", [class_id], "class_float", to=TensorProto.FLOAT),
            g.const("one", np.array(1.0, np.float32)),
        ],
        "label_ids",
    )
    missing = g.op("Sub", [g.ints("max_detections", [MAX_DETECTIONS]), kept], "missing")
    zero = g.ints("zero", [0])
    pads_2d = g.op("Concat", [zero, zero, missing, zero], "pads_boxes", axis=0)
    pads_1d = g.op("Concat", [zero, missing], "pads_rows", axis=0)
    outputs = {
        "detection_boxes": g.op("Pad", [top_boxes, pads_2d], "padded_boxes"),
        "detection_scores": g.op("Pad", [top_scores, pads_1d], "padded_scores"),
        "detection_classes": g.op("Pad", [label_ids, pads_1d], "padded_classes"),
    }
    axis0 = g.ints("axis0", [0])
    g.output(
        "detection_boxes",
        g.op("Unsqueeze", [outputs["detection_boxes"], axis0], "batch_boxes"),
        [1, MAX_DETECTIONS, 4],
    )
    for name in ("detection_scores", "detection_classes"):
        g.output(name, g.op("Unsqueeze", [outputs[name], axis0], f"batch_{name}"), [1, MAX_DETECTIONS])
    g.output("num_detections", g.op("Cast", [kept], "count", to=TensorProto.FLOAT), [1])
    return g.model(
        "yolov3-tiny (darknet, COCO-80) with YOLOv3 decoding and NMS in the graph, emitting TensorFlow "
        "Object Detection API outputs; converted by sightd.zoo.",
        {
            **_metadata(network),
            "nms_iou_threshold": str(NMS_IOU_THRESHOLD),
            "nms_score_threshold": str(NMS_SCORE_THRESHOLD),
            "class_id_offset": "1",
        },
    )
