"""face-api.js weights manifests: quantised and plain tensors, shard checks, the real tiny face detector."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sightd.zoo import artifacts
from sightd.zoo.readers import faceapi
from sightd.zoo.readers.faceapi import ManifestError


def _manifest(weights: list[dict[str, object]], paths: list[str]) -> str:
    return json.dumps([{"paths": paths, "weights": weights}])


def test_dequantises_and_reads_plain_tensors_across_shards() -> None:
    quantised = np.array([0, 1, 255, 128, 2, 3], np.uint8)
    plain = np.array([[1.5, -2.0], [0.25, 8.0]], "<f4")
    data = quantised.tobytes() + plain.tobytes()
    shards = {"a.bin": data[:4], "b.bin": data[4:]}
    manifest = _manifest(
        [
            {
                "name": "q",
                "shape": [2, 3],
                "dtype": "float32",
                "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0},
            },
            {"name": "p", "shape": [2, 2], "dtype": "float32"},
        ],
        ["a.bin", "b.bin"],
    )
    tensors = faceapi.load_weights(manifest, shards.__getitem__)
    np.testing.assert_allclose(tensors["q"], (quantised * 0.5 - 1.0).reshape(2, 3))
    assert tensors["q"].dtype == np.float32
    np.testing.assert_array_equal(tensors["p"], plain)


def test_shards_must_hold_exactly_the_tensors() -> None:
    spec = [{"name": "p", "shape": [3], "dtype": "float32"}]
    with pytest.raises(ManifestError, match="end before"):
        faceapi.load_weights(_manifest(spec, ["s"]), lambda _: b"\x00" * 8)
    with pytest.raises(ManifestError, match="no tensor uses"):
        faceapi.load_weights(_manifest(spec, ["s"]), lambda _: b"\x00" * 16)
    bad = [{"name": "q", "shape": [1], "dtype": "float32", "quantization": {"dtype": "uint16"}}]
    with pytest.raises(ManifestError, match="unsupported quantisation"):
        faceapi.load_weights(_manifest(bad, ["s"]), lambda _: b"\x00\x00")
    with pytest.raises(ManifestError, match="not JSON"):
        faceapi.load_weights("{", lambda _: b"")


def test_real_tiny_face_detector_weights() -> None:
    archive = artifacts.fetch("face-api")
    manifest = artifacts.read_member(archive, "package/model/tiny_face_detector_model-weights_manifest.json")
    tensors = faceapi.load_weights(manifest, lambda p: artifacts.read_member(archive, f"package/model/{p}"))
    assert tensors["conv0/filters"].shape == (3, 3, 3, 16)
    channels = [16, 32, 64, 128, 256, 512]
    for i in range(1, 6):
        assert tensors[f"conv{i}/depthwise_filter"].shape == (3, 3, channels[i - 1], 1)
        assert tensors[f"conv{i}/pointwise_filter"].shape == (1, 1, channels[i - 1], channels[i])
    assert tensors["conv8/filters"].shape == (1, 1, 512, 25)
    assert len(tensors) == 19
