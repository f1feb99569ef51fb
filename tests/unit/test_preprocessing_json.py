"""v0.7 preprocessing documents: the seed's examples verbatim, the extensions, every violation collected with
its field path, and the way back to JSON."""

from __future__ import annotations

import copy
import io
import json
import struct
from typing import Any

import numpy as np
import pytest

from sightd import _core
from sightd.errors import InvalidArgumentError
from sightd.preprocessing import PreprocessingError, parse_preprocessing, preprocessing_to_document

# The four examples of deepomatic-api-v0.7 "Pre-processing examples", as printed there.
CAFFE_CLASSIFICATION = """{"inputs": [{"tensor_name": "data", "image": {"resize_type": "SQUASH",
 "data_type": "FLOAT32", "dimension_order": "NCHW", "pixel_scaling": 255.0,
 "mean_file": "imagenet_mean.binaryproto", "target_size": "224x224", "color_channels": "BGR"}}],
 "batched_output": true}"""
CAFFE_FASTER_RCNN = """{"inputs": [{"tensor_name": "data", "image": {"resize_type": "NETWORK",
 "data_type": "FLOAT32", "dimension_order": "NCHW", "pixel_scaling": 255.0,
 "mean_file": "imagenet_mean.binaryproto", "target_size": "800", "color_channels": "BGR"}},
 {"tensor_name": "im_info", "constant": {"shape": [3], "data": ["data.1", "data.2", 1.0]}}],
 "batched_output": false}"""
TF_INCEPTION = """{"inputs": [{"tensor_name": "map/TensorArrayStack/TensorArrayGatherV3:0",
 "image": {"resize_type": "CROP", "data_type": "FLOAT32", "dimension_order": "NHWC", "pixel_scaling": 2.0,
 "mean_file": "unitary_mean.npy", "target_size": "299x299", "color_channels": "BGR"}}],
 "batched_output": true}"""
TF_DETECTION = """{"inputs": [{"tensor_name": "image_tensor:0", "image": {"resize_type": "NETWORK",
 "data_type": "UINT8", "dimension_order": "NHWC", "pixel_scaling": 255.0, "mean_file": "",
 "target_size": "500", "color_channels": "RGB"}}], "batched_output": true}"""


def blobproto_per_pixel(channels: int, height: int, width: int) -> bytes:
    """A Caffe BlobProto by hand: num, channels, height, width as varints, then packed float data."""
    values = np.linspace(100, 130, channels * height * width, dtype="<f4").tobytes()

    def varint(n: int) -> bytes:
        out = b""
        while n >= 0x80:
            out += bytes([n & 0x7F | 0x80])
            n >>= 7
        return out + bytes([n])

    header = b"\x08\x01\x10" + varint(channels) + b"\x18" + varint(height) + b"\x20" + varint(width)
    return header + b"\x2a" + varint(len(values)) + values


def unitary_mean() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ones((1, 1, 3)), allow_pickle=False)  # the seed's recipe
    return buffer.getvalue()


FILES = {"imagenet_mean.binaryproto": blobproto_per_pixel(3, 16, 16), "unitary_mean.npy": unitary_mean()}


def test_caffe_classification() -> None:
    spec = parse_preprocessing(json.loads(CAFFE_CLASSIFICATION), FILES)
    (image,) = spec.image_inputs
    assert spec.batched_output
    assert image.tensor_name == "data"
    assert image.resize_type == _core.ResizeType.SQUASH
    assert image.data_type == _core.DataType.FLOAT32
    assert image.dimension_order == _core.DimensionOrder.NCHW
    assert image.color_channels == _core.ColorChannels.BGR
    assert image.pixel_scaling == 255.0
    assert (image.target_width, image.target_height) == (224, 224)
    assert image.mean_file is not None
    assert (image.mean_file.channels, image.mean_file.height, image.mean_file.width) == (3, 16, 16)
    assert image.mean_file.values[0, 0, 0] == pytest.approx(100.0)


def test_faster_rcnn_constants() -> None:
    spec = parse_preprocessing(json.loads(CAFFE_FASTER_RCNN), FILES)
    assert not spec.batched_output
    (image,) = spec.image_inputs
    assert image.resize_type == _core.ResizeType.NETWORK
    assert (image.target_width, image.target_height) == (0, 800)
    (constant,) = spec.constant_inputs
    assert (constant.tensor_name, constant.input_index, constant.shape) == ("im_info", 1, [3])
    assert [(v.tensor_name, v.dimension, v.number) for v in constant.data] == [
        ("data", 1, 0.0),
        ("data", 2, 0.0),
        ("", -1, 1.0),
    ]


def test_tensorflow_examples() -> None:
    inception = parse_preprocessing(json.loads(TF_INCEPTION), FILES).image_inputs[0]
    assert inception.tensor_name == "map/TensorArrayStack/TensorArrayGatherV3:0"
    assert inception.pixel_scaling == 2.0
    assert inception.mean_file is not None
    assert inception.mean_file.per_channel
    np.testing.assert_array_equal(inception.mean_file.values.ravel(), [1, 1, 1])
    detection = parse_preprocessing(json.loads(TF_DETECTION), {}).image_inputs[0]
    assert detection.mean_file is None
    assert detection.data_type == _core.DataType.UINT8
    assert detection.color_channels == _core.ColorChannels.RGB
    assert detection.target_height == 500


@pytest.mark.parametrize("example", [CAFFE_CLASSIFICATION, CAFFE_FASTER_RCNN, TF_INCEPTION, TF_DETECTION])
def test_back_to_the_same_document(example: str) -> None:
    document = json.loads(example)
    names = {
        entry["tensor_name"]: entry["image"]["mean_file"] for entry in document["inputs"] if "image" in entry
    }
    again = preprocessing_to_document(parse_preprocessing(document, FILES), names)
    assert again == document
    assert json.loads(json.dumps(again)) == document


def test_extensions_round_trip() -> None:
    document: dict[str, Any] = {
        "inputs": [
            {
                "tensor_name": "images",
                "image": {
                    "resize_type": "LETTERBOX",
                    "data_type": "UINT8",
                    "dimension_order": "NHWC",
                    "target_size": "640x480",
                    "color_channels": "RGB",
                    "pixel_scaling": 1.0,
                    "pad_value": 114,
                    "letterbox_align": "TOP_LEFT",
                    "interpolation": "AREA",
                },
            },
            {
                "tensor_name": "input.1",
                "image": {
                    "resize_type": "CROP",
                    "data_type": "FLOAT32",
                    "dimension_order": "NCHW",
                    "target_size": 224,
                    "crop_ratio": 0.875,
                    "mean": [0.485, 0.456, 0.406],
                    "std": [0.229, 0.224, 0.225],
                    "color_channels": "RGB",
                    "antialias": True,
                },
            },
            {
                "tensor_name": "im",
                "image": {
                    "resize_type": "NETWORK",
                    "data_type": "FLOAT32",
                    "dimension_order": "NCHW",
                    "target_size": "800",
                    "max_size": 1333,
                    "stride": 32,
                    "pad_value": [1, 2, 3],
                    "color_channels": "GRAY",
                    "mean": [0.5],
                    "std": [2],
                },
            },
            {
                "tensor_name": "sizes",
                "constant": {"shape": [2, 2], "data": ["input.1.1", "input.1.2", "im.1", 7]},
            },
        ]
    }
    with pytest.raises(PreprocessingError) as error:  # L has one channel: one pad value
        parse_preprocessing(document)
    assert error.value.violations == [("inputs[2].image.pad_value", "needs one value or 1")]
    document["inputs"][2]["image"]["pad_value"] = [10]
    spec = parse_preprocessing(document)
    letterbox, crop, network = spec.image_inputs
    assert letterbox.pad_value == [114.0]
    assert letterbox.letterbox_align == _core.LetterboxAlign.TOP_LEFT
    assert letterbox.interpolation == _core.Interpolation.AREA
    assert (crop.target_width, crop.target_height, crop.crop_ratio) == (224, 224, 0.875)
    assert crop.std == pytest.approx([0.229, 0.224, 0.225])
    assert (letterbox.antialias, crop.antialias, network.antialias) == (False, True, False)
    assert (network.max_size, network.stride, network.color_channels) == (1333, 32, _core.ColorChannels.L)
    values = spec.constant_inputs[0].data
    assert [(v.tensor_name, v.dimension) for v in values[:3]] == [("input.1", 1), ("input.1", 2), ("im", 1)]
    document_again = preprocessing_to_document(spec)
    assert parse_preprocessing(document_again).image_inputs[1].crop_ratio == 0.875
    assert preprocessing_to_document(parse_preprocessing(document_again)) == document_again
    assert document_again["inputs"][1]["image"]["target_size"] == "224x224"
    assert document_again["inputs"][1]["image"]["antialias"] is True
    assert "antialias" not in document_again["inputs"][0]["image"]  # the default is left out
    assert document_again["inputs"][3]["constant"]["data"] == ["input.1.1", "input.1.2", "im.1", 7]


def valid() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(CAFFE_FASTER_RCNN)
    return document


def mutate(path: str, value: object) -> dict[str, Any]:
    document = valid()
    target: Any = document
    keys = path.split("/")
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]
    last = keys[-1]
    if value is KeyError:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return document


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (mutate("inputs/0/image/target_size", "224x224"), "inputs[0].image.target_size"),
        (mutate("inputs/0/image/target_size", "big"), "inputs[0].image.target_size"),
        (mutate("inputs/0/image/target_size", KeyError), "inputs[0].image.target_size"),
        (mutate("inputs/0/image/resize_type", "squash"), "inputs[0].image.resize_type"),
        (mutate("inputs/0/image/resize_type", KeyError), "inputs[0].image.resize_type"),
        (mutate("inputs/0/image/data_type", KeyError), "inputs[0].image.data_type"),
        (mutate("inputs/0/image/dimension_order", KeyError), "inputs[0].image.dimension_order"),
        (mutate("inputs/0/image/color_channels", KeyError), "inputs[0].image.color_channels"),
        (mutate("inputs/0/image/data_type", "FLOAT16"), "inputs[0].image.data_type"),
        (mutate("inputs/0/image/dimension_order", "CHW"), "inputs[0].image.dimension_order"),
        (mutate("inputs/0/image/color_channels", "BGRA"), "inputs[0].image.color_channels"),
        (mutate("inputs/0/image/pixel_scaling", 0), "inputs[0].image.pixel_scaling"),
        (mutate("inputs/0/image/pixel_scaling", True), "inputs[0].image.pixel_scaling"),
        (mutate("inputs/0/image/mean_file", "missing.npy"), "inputs[0].image.mean_file"),
        (mutate("inputs/0/image/mean_file", "unitary_mean.npy/"), "inputs[0].image.mean_file"),
        (mutate("inputs/0/image/mean", [1, 2]), "inputs[0].image.mean"),
        (mutate("inputs/0/image/std", [1, 0, 1]), "inputs[0].image.std"),
        (mutate("inputs/0/image/crop_ratio", 0.5), "inputs[0].image.crop_ratio"),
        (mutate("inputs/0/image/pad_value", 300), "inputs[0].image.pad_value"),
        (mutate("inputs/0/image/letterbox_align", "CENTER"), "inputs[0].image.letterbox_align"),
        (mutate("inputs/0/image/stride", 0), "inputs[0].image.stride"),
        (mutate("inputs/0/image/max_size", 1.5), "inputs[0].image.max_size"),
        (mutate("inputs/0/image/interpolation", "LANCZOS"), "inputs[0].image.interpolation"),
        (mutate("inputs/0/image/antialias", 1), "inputs[0].image.antialias"),
        (mutate("inputs/0/image/antialias", "true"), "inputs[0].image.antialias"),
        (mutate("inputs/0/image/colour_channels", "BGR"), "inputs[0].image.colour_channels"),
        (mutate("inputs/1/tensor_name", ""), "inputs[1].tensor_name"),
        (mutate("inputs/0/tensor_name", 5), "inputs[0].tensor_name"),
        (mutate("inputs/1/tensor_name", "data"), "inputs[1].tensor_name"),
        (mutate("inputs/1/constant/shape", [4]), "inputs[1].constant.data"),
        (mutate("inputs/1/constant/shape", [0]), "inputs[1].constant.shape"),
        (mutate("inputs/1/constant/data/0", "image.1"), "inputs[1].constant.data[0]"),
        (mutate("inputs/1/constant/data/1", "data.3"), "inputs[1].constant.data[1]"),
        (mutate("inputs/1/constant/data/2", "one"), "inputs[1].constant.data[2]"),
        (mutate("inputs/1/constant", [3]), "inputs[1].constant"),
        (mutate("inputs/1/image", {}), "inputs[1]"),
        (mutate("inputs", []), "inputs"),
        (mutate("batched_output", "yes"), "batched_output"),
        (mutate("batch_output", True), "batch_output"),
    ],
)
def test_violation_names_its_field(document: dict[str, Any], field: str) -> None:
    files = {**FILES, "unitary_mean.npy/": b"\x93NUMPY garbage"}
    with pytest.raises(PreprocessingError) as error:
        parse_preprocessing(document, files)
    # The first violation is the one made; renaming an image input also breaks the references to it.
    assert error.value.violations[0][0] == field
    assert len(error.value.violations) == (3 if field == "inputs[0].tensor_name" else 1)
    assert error.value.field == field
    assert isinstance(error.value, InvalidArgumentError)


@pytest.mark.parametrize("interpolation", ["LINEAR", "CUBIC", "AREA", "NEAREST", None])
def test_antialias_is_for_linear_and_cubic(interpolation: str | None) -> None:
    document = valid()
    image = document["inputs"][0]["image"]
    if interpolation is not None:
        image["interpolation"] = interpolation
    image["antialias"] = True
    if interpolation in ("AREA", "NEAREST"):
        with pytest.raises(PreprocessingError) as error:
            parse_preprocessing(document, FILES)
        assert error.value.violations == [
            ("inputs[0].image.antialias", "only applies to LINEAR and CUBIC interpolation")
        ]
        image["antialias"] = False  # false is the default, whatever the interpolation
        assert not parse_preprocessing(document, FILES).image_inputs[0].antialias
    else:
        assert parse_preprocessing(document, FILES).image_inputs[0].antialias


def test_every_violation_is_collected() -> None:
    document = valid()
    image = document["inputs"][0]["image"]
    image.update(target_size="0", pixel_scaling=-1, mean=[1], color_channels="XYZ", crop_ratio=2)
    document["inputs"][1]["constant"]["data"][0] = "nothing.1"
    document["inputs"].append({"tensor_name": "data"})
    with pytest.raises(PreprocessingError) as error:
        parse_preprocessing(document, FILES)
    fields = [field for field, _ in error.value.violations]
    assert fields == [
        "inputs[0].image.color_channels",
        "inputs[0].image.pixel_scaling",
        "inputs[0].image.target_size",
        "inputs[0].image.mean",
        "inputs[0].image.crop_ratio",
        "inputs[1].constant.data[0]",
        "inputs[2].tensor_name",
        "inputs[2]",
    ]
    assert "and 7 more problems" in str(error.value)


def test_mean_file_channels_must_match() -> None:
    document = json.loads(CAFFE_CLASSIFICATION)
    document["inputs"][0]["image"]["color_channels"] = "L"
    with pytest.raises(PreprocessingError, match="3 channels; the input has 1"):
        parse_preprocessing(document, FILES)
    grey = {"imagenet_mean.binaryproto": blobproto_per_pixel(1, 8, 8)}
    assert parse_preprocessing(document, grey).image_inputs[0].mean_file is not None


def test_not_a_document() -> None:
    for document in (None, [], "inputs", {"inputs": "data"}, {"inputs": [3]}):
        with pytest.raises(PreprocessingError):
            parse_preprocessing(document)


def test_parsing_does_not_modify_the_document() -> None:
    document = json.loads(CAFFE_FASTER_RCNN)
    before = copy.deepcopy(document)
    parse_preprocessing(document, FILES)
    assert document == before


def test_struct_packing_helper_is_a_real_blobproto() -> None:
    """The hand-made BlobProto above is what parse_mean_file reads (guards the helper itself)."""
    mean = _core.parse_mean_file(blobproto_per_pixel(3, 2, 2))
    np.testing.assert_allclose(mean.values.ravel(), np.linspace(100, 130, 12), rtol=1e-6)
    assert struct.unpack("<f", blobproto_per_pixel(1, 1, 1)[-4:]) == (100.0,)
