"""Mean files: Caffe BlobProto messages written with protobuf, and .npy files written with NumPy."""

from __future__ import annotations

import numpy as np
import pytest
from mean_files import blobproto, npy

from sightd import _core
from sightd.errors import InvalidArgumentError


def chw(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


PIXEL_MEAN = np.arange(3 * 4 * 5, dtype=np.float64).reshape(3, 4, 5) * 1.5 - 20


@pytest.mark.parametrize("packed", [True, False])
@pytest.mark.parametrize("legacy", [True, False])
@pytest.mark.parametrize("double", [False, True])
def test_blobproto_per_pixel(packed: bool, legacy: bool, double: bool) -> None:
    mean = _core.parse_mean_file(blobproto(PIXEL_MEAN[None], legacy=legacy, packed=packed, double=double))
    assert (mean.channels, mean.height, mean.width) == (3, 4, 5)
    assert not mean.per_channel
    np.testing.assert_array_equal(mean.values, chw(PIXEL_MEAN))


def test_blobproto_per_channel_and_ignored_fields() -> None:
    mean = _core.parse_mean_file(blobproto(np.array([104.0, 117.0, 123.0]).reshape(1, 3, 1, 1), diff=True))
    assert mean.per_channel
    np.testing.assert_array_equal(mean.values[:, 0, 0], [104, 117, 123])
    shape_only = _core.parse_mean_file(blobproto(np.array([1.0, 2.0, 3.0]), legacy=False))
    np.testing.assert_array_equal(shape_only.values.ravel(), [1, 2, 3])
    three_d = _core.parse_mean_file(blobproto(PIXEL_MEAN, legacy=False))
    np.testing.assert_array_equal(three_d.values, chw(PIXEL_MEAN))


@pytest.mark.parametrize(
    "dtype", ["<f4", ">f4", "<f8", ">f8", "<f2", ">f2", "|u1", "<i2", ">i2", "<i4", ">i4", "<i8", ">i8"]
)
@pytest.mark.parametrize("fortran", [False, True])
def test_npy_dtypes(dtype: str, fortran: bool) -> None:
    values = np.abs(PIXEL_MEAN).round() if dtype == "|u1" else PIXEL_MEAN.round()
    hwc = values.transpose(1, 2, 0).astype(dtype)
    mean = _core.parse_mean_file(npy(hwc, fortran=fortran))
    assert (mean.channels, mean.height, mean.width) == (3, 4, 5)
    np.testing.assert_array_equal(mean.values, hwc.astype(np.float32).transpose(2, 0, 1))


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
def test_npy_versions(version: tuple[int, int]) -> None:
    mean = _core.parse_mean_file(npy(PIXEL_MEAN, version=version))
    np.testing.assert_array_equal(mean.values, chw(PIXEL_MEAN))


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((3,), (3, 1, 1)),
        ((1, 1, 3), (3, 1, 1)),  # the seed's unitary_mean.npy
        ((1, 3), (3, 1, 1)),
        ((3, 1, 1), (3, 1, 1)),
        ((1,), (1, 1, 1)),
        ((4, 5, 3), (3, 4, 5)),  # HWC
        ((3, 4, 5), (3, 4, 5)),  # CHW: the last dimension is not a channel count
        ((1, 3, 4, 5), (3, 4, 5)),
        ((1, 4, 5, 3), (3, 4, 5)),
        ((4, 5), (1, 4, 5)),  # a grey per-pixel mean
        ((4, 5, 1), (1, 4, 5)),
    ],
)
def test_npy_layouts(shape: tuple[int, ...], expected: tuple[int, int, int]) -> None:
    values = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    mean = _core.parse_mean_file(npy(values))
    assert (mean.channels, mean.height, mean.width) == expected
    squeezed = values.reshape([d for d in shape if d != 1] or [1])
    if len(squeezed.shape) == 3 and squeezed.shape[2] in (1, 3) and shape != (3, 4, 5):
        squeezed = squeezed.transpose(2, 0, 1)  # HWC to CHW
    np.testing.assert_array_equal(mean.values.ravel(), squeezed.astype(np.float32).ravel())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\x93NUMPY\x01\x00", "truncated"),
        (npy(np.zeros((2, 3)))[:-5], "truncated"),
        (npy(np.zeros((3, 4, 5, 6))), "dimensions"),
        (npy(np.zeros((4, 4, 4, 2))[..., 0]), "channels"),
        (npy(np.array([1.0, np.nan, 2.0])), "finite"),
        (npy(np.zeros(3, dtype=np.complex64)), "dtype"),
        (npy(np.zeros(3, dtype=[("a", "<f4")])), "dtype"),
        (b"\x93NUMPY\x09\x00\x10\x00{'descr': '<f4'}", "version"),
        (blobproto(np.zeros((2, 3, 1, 1))), "num"),
        (blobproto(np.zeros((1, 3, 2, 2)))[:-3], "truncated"),
        (b"\x0f\x01", "wire type"),
        (b"\x08\x01\x10\x03", "no data"),
        (b"\x2a\x08" + np.zeros(2, np.float32).tobytes() + b"\x10\x03\x18\x02", "shape needs"),
        (b"\xff" * 11, "varint"),
    ],
)
def test_bad_mean_files(content: bytes, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message) as error:
        _core.parse_mean_file(content)
    assert error.value.field == "mean_file"


def test_random_bytes_never_crash() -> None:
    rng = np.random.default_rng(7)
    good = [blobproto(PIXEL_MEAN[None]), npy(PIXEL_MEAN)]
    for k in range(400):
        content = bytearray(good[k % 2])
        for _ in range(1 + k % 5):
            content[int(rng.integers(len(content)))] = int(rng.integers(256))
        content = content[: int(rng.integers(1, len(content) + 1))]
        try:
            mean = _core.parse_mean_file(bytes(content))
        except InvalidArgumentError:
            continue
        assert mean.channels in (1, 3)
        assert np.isfinite(mean.values).all()
