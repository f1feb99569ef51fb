"""``sightd predict`` through a subprocess, on a real photo, with a small ONNX graph written to disk."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

PREPROCESSING = {
    "inputs": [
        {
            "tensor_name": "data",
            "image": {
                "resize_type": "SQUASH",
                "data_type": "FLOAT32",
                "dimension_order": "NCHW",
                "pixel_scaling": 255.0,
                "mean_file": "",
                "target_size": "64x48",
                "color_channels": "BGR",
            },
        }
    ],
    "batched_output": True,
}


def channel_mean_model() -> bytes:
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["data"], ["channel_mean"], axes=[2, 3], keepdims=0),
            helper.make_node("ArgMax", ["channel_mean"], ["strongest"], axis=1, keepdims=0),
        ],
        "cli",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, 48, 64])],
        [
            helper.make_tensor_value_info("channel_mean", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("strongest", TensorProto.INT64, ["N"]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model.SerializeToString()


@pytest.fixture
def network(tmp_path: Path) -> Path:
    path = tmp_path / "model.onnx"
    path.write_bytes(channel_mean_model())
    onnx.checker.check_model(str(path))
    return path


def predict(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sightd.cli", "predict", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def expected_means(image: Path, mean: np.ndarray | None = None) -> np.ndarray:
    bgr = cv2.imread(str(image), cv2.IMREAD_COLOR)
    resized = cv2.resize(bgr, (64, 48), interpolation=cv2.INTER_LINEAR).astype(np.float64)
    means = resized.mean(axis=(0, 1))
    return means if mean is None else means - mean


def printed_values(output: str, image: Path, tensor: str) -> list[float]:
    block = output.split(f"{image}:", 1)[1]
    line = next(line for line in block.splitlines() if line.strip().startswith(tensor + " "))
    return [float(v) for v in line.split(":", 1)[1].split()]


def test_predict_prints_outputs_and_transform(network: Path, tmp_path: Path, darknet_data: Path) -> None:
    preprocessing = tmp_path / "pre.json"
    preprocessing.write_text(json.dumps(PREPROCESSING))
    dog, eagle = darknet_data / "dog.jpg", darknet_data / "eagle.jpg"
    result = predict("--network", network, "--preprocessing", preprocessing, "--threads", "2", dog, eagle)
    assert result.returncode == 0, result.stderr
    for image in (dog, eagle):
        np.testing.assert_allclose(
            printed_values(result.stdout, image, "channel_mean"), expected_means(image), atol=1e-2
        )
        assert printed_values(result.stdout, image, "strongest") == [float(np.argmax(expected_means(image)))]
    assert "channel_mean float32 [3]:" in result.stdout
    assert "strongest int64 []:" in result.stdout
    assert re.search(r"transform \[0\]: image 768x576, crop \(0, 0, 768x576\), .*tensor 64x48", result.stdout)
    assert "on CPUExecutionProvider" in result.stdout


def test_predict_reads_mean_files(network: Path, tmp_path: Path, darknet_data: Path) -> None:
    mean = np.array([100.0, 110.0, 120.0])
    with io.BytesIO() as buffer:
        np.save(buffer, mean.reshape(1, 1, 3), allow_pickle=False)
        (tmp_path / "elsewhere.npy").write_bytes(buffer.getvalue())
    document = json.loads(json.dumps(PREPROCESSING))
    document["inputs"][0]["image"]["mean_file"] = "mean.npy"
    preprocessing = tmp_path / "pre.json"
    preprocessing.write_text(json.dumps(document))
    dog = darknet_data / "dog.jpg"
    result = predict(
        "--network",
        network,
        "--preprocessing",
        preprocessing,
        "--mean-file",
        f"mean.npy={tmp_path / 'elsewhere.npy'}",
        dog,
    )
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(
        printed_values(result.stdout, dog, "channel_mean"), expected_means(dog, mean), atol=1e-2
    )
    # Next to the JSON file, the name alone is enough.
    (tmp_path / "mean.npy").write_bytes((tmp_path / "elsewhere.npy").read_bytes())
    again = predict("--network", network, "--preprocessing", preprocessing, "--output", "channel_mean", dog)
    assert again.returncode == 0, again.stderr
    assert "strongest" not in again.stdout
    np.testing.assert_allclose(
        printed_values(again.stdout, dog, "channel_mean"), expected_means(dog, mean), atol=1e-2
    )


def test_predict_reports_a_bad_image_and_goes_on(network: Path, tmp_path: Path, darknet_data: Path) -> None:
    preprocessing = tmp_path / "pre.json"
    preprocessing.write_text(json.dumps(PREPROCESSING))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes((darknet_data / "dog.jpg").read_bytes()[:500])
    result = predict(
        "--network", network, "--preprocessing", preprocessing, broken, darknet_data / "kite.jpg"
    )
    assert result.returncode == 1
    assert f"{broken}: ImageError" in result.stdout
    assert f"{darknet_data / 'kite.jpg'}:" in result.stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["inputs"][0]["image"].update(target_size="32x32"), "inputs[0].image.target_size"),
        (lambda d: d["inputs"][0].update(tensor_name="images"), "inputs[0].tensor_name"),
        (lambda d: d["inputs"][0]["image"].update(mean_file="absent.binaryproto"), "mean_file"),
    ],
)
def test_predict_refuses_a_preprocessing_that_does_not_fit(
    network: Path, tmp_path: Path, darknet_data: Path, change: object, message: str
) -> None:
    document = json.loads(json.dumps(PREPROCESSING))
    change(document)  # type: ignore[operator]
    preprocessing = tmp_path / "pre.json"
    preprocessing.write_text(json.dumps(document))
    result = predict("--network", network, "--preprocessing", preprocessing, darknet_data / "dog.jpg")
    assert result.returncode == 2
    assert message in result.stderr


def test_predict_refuses_a_corrupt_network(tmp_path: Path, darknet_data: Path) -> None:
    network = tmp_path / "model.onnx"
    network.write_bytes(b"\x08\x01garbage")
    preprocessing = tmp_path / "pre.json"
    preprocessing.write_text(json.dumps(PREPROCESSING))
    result = predict("--network", network, "--preprocessing", preprocessing, darknet_data / "dog.jpg")
    assert result.returncode == 2
    assert "cannot load the model" in result.stderr
