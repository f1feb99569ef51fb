"""Multipart forms of v0.7 clients back into documents: the official client's flattened keys (cases
captured from its dump_json_for_multipart), str() values typed again by the sightd.v1 schema, JSON text
fields."""

from __future__ import annotations

import pytest

from sightd.app.errors import BadRequestError
from sightd.gateway.forms import coerce, split_key, unflatten
from sightd.v1 import inference_pb2, networks_pb2


@pytest.mark.parametrize(
    ("key", "steps"),
    [
        ("inputs[0]image.source", ["inputs", 0, "image", "source"]),
        ("preprocessing.inputs[0]tensor_name", ["preprocessing", "inputs", 0, "tensor_name"]),
        (
            "postprocessings[0]tensors_output.tensors[1]",
            ["postprocessings", 0, "tensors_output", "tensors", 1],
        ),
        ("preprocessing.inputs[1]constant.data[2]", ["preprocessing", "inputs", 1, "constant", "data", 2]),
        ("a[0].b", ["a", 0, "b"]),
        ("name", ["name"]),
        ("model.onnx", ["model", "onnx"]),
        ("a..b", None),
        ("[0]a", None),
        ("a[x]", None),
        ("a.", None),
        ("", None),
    ],
)
def test_split_key(key: str, steps: list[str | int] | None) -> None:
    assert split_key(key) == steps


def test_inference_form_of_the_official_client() -> None:
    form = {
        "show_discarded": "True",
        "max_predictions": "3",
        "inputs[0]image.source": b"\xff\xd8jpeg",
        "inputs[0]image.crop_uniform_background": "False",
        "inputs[1]image.source": "http://127.0.0.1/dog.jpg",
        "inputs[1]image.crop_uniform_background": "false",
    }
    document = coerce(unflatten(form), inference_pb2.InferRequest.DESCRIPTOR)
    assert document == {
        "show_discarded": True,
        "max_predictions": 3,
        "inputs": [
            {"image": {"source": b"\xff\xd8jpeg", "crop_uniform_background": False}},
            {"image": {"source": "http://127.0.0.1/dog.jpg", "crop_uniform_background": False}},
        ],
    }


def test_network_form_flattened_or_json_text() -> None:
    flattened = {
        "name": "True",  # a string field keeps its text
        "metadata.origin": "12",  # free JSON: strings stay strings
        "framework": "onnx",
        "preprocessing.inputs[0]tensor_name": "data",
        "preprocessing.inputs[0]image.pixel_scaling": "255.0",
        "preprocessing.inputs[0]image.mean[0]": "1",
        "preprocessing.inputs[0]image.mean[1]": "2.5",
        "preprocessing.inputs[0]image.max_size": "800.0",
        "preprocessing.inputs[0]image.antialias": "True",
        "preprocessing.inputs[1]constant.data[0]": "data.1",
        "preprocessing.inputs[1]constant.data[1]": "1.0",
        "preprocessing.inputs[1]constant.shape[0]": "2",
        "preprocessing.batched_output": "False",
        "postprocessings[0]classification.thresholds[0]": "0.5",
        "postprocessings[0]classification.output_tensor": "prob",
    }
    document = coerce(unflatten(flattened), networks_pb2.Network.DESCRIPTOR)
    assert document == {
        "name": "True",
        "metadata": {"origin": "12"},
        "framework": "onnx",
        "preprocessing": {
            "inputs": [
                {
                    "tensor_name": "data",
                    "image": {"pixel_scaling": 255.0, "mean": [1.0, 2.5], "max_size": 800, "antialias": True},
                },
                {"constant": {"data": ["data.1", "1.0"], "shape": [2]}},
            ],
            "batched_output": False,
        },
        "postprocessings": [{"classification": {"thresholds": [0.5], "output_tensor": "prob"}}],
    }
    text = {"name": "n", "preprocessing": '{"inputs": [{"tensor_name": "x"}], "batched_output": true}'}
    assert coerce(unflatten(text), networks_pb2.Network.DESCRIPTOR)["preprocessing"] == {
        "inputs": [{"tensor_name": "x"}],
        "batched_output": True,
    }


def test_values_that_do_not_convert_stay_text_and_conflicts_are_refused() -> None:
    document = coerce(
        unflatten({"show_discarded": "maybe", "max_predictions": "1.5"}),
        inference_pb2.InferRequest.DESCRIPTOR,
    )
    assert document == {"show_discarded": "maybe", "max_predictions": "1.5"}
    with pytest.raises(BadRequestError):
        unflatten({"inputs": "x", "inputs[0]image.source": "y"})
    with pytest.raises(BadRequestError):
        coerce({"preprocessing": "{not json"}, networks_pb2.Network.DESCRIPTOR)
