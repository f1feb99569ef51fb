"""From source files to ONNX models: each converter reads its sources and calls its builder.

A converter gets the bytes of its network's sources (in ``catalog.Network.sources`` order) and returns the
model. Nothing here runs code from the packages: weights are read by the readers, ONNX files are parsed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import onnx

from sightd.zoo.builders import mobilenet_v2, nsfw, retinaface, tiny_face, yolov3_tiny
from sightd.zoo.readers import darknet, faceapi, python_constant, torch_legacy

Converter = Callable[[Sequence[bytes]], onnx.ModelProto]


def _mobilenet_v2(sources: Sequence[bytes]) -> onnx.ModelProto:
    (checkpoint,) = sources
    return mobilenet_v2.build(torch_legacy.load_state_dict(checkpoint))


def _darknet(sources: Sequence[bytes]) -> tuple[list[darknet.Section], darknet.Weights]:
    cfg, weights = sources
    return darknet.parse_cfg(cfg.decode("utf-8")), darknet.parse_weights(weights)


def _tiny_face(sources: Sequence[bytes]) -> onnx.ModelProto:
    manifest, shard = sources

    def read_shard(path: str) -> bytes:
        if path != "tiny_face_detector_model.bin":
            raise faceapi.ManifestError(f"unexpected shard {path}")
        return shard

    return tiny_face.build(faceapi.load_weights(manifest, read_shard))


def _retinaface(sources: Sequence[bytes]) -> onnx.ModelProto:
    (module,) = sources
    return retinaface.build(onnx.load_from_string(python_constant.read_bytes_constant(module, "WEIGHTS")))


def _nsfw(sources: Sequence[bytes]) -> onnx.ModelProto:
    (model,) = sources
    return nsfw.build(onnx.load_from_string(model))


CONVERTERS: dict[str, Converter] = {
    "mobilenet_v2": _mobilenet_v2,
    "yolov3_tiny": lambda s: yolov3_tiny.build_heads(*_darknet(s)),
    "yolov3_tiny_direct": lambda s: yolov3_tiny.build_direct(*_darknet(s)),
    "yolov3_tiny_tagger": lambda s: yolov3_tiny.build_tagger(*_darknet(s)),
    "tiny_face": _tiny_face,
    "retinaface": _retinaface,
    "nsfw": _nsfw,
}
