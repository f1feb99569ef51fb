"""The core's own checks of a preprocessing spec (validate_preprocessing), with the field they name."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from sightd import _core
from sightd.errors import InvalidArgumentError


def image(**fields: object) -> _core.ImageInputSpec:
    spec = _core.ImageInputSpec()
    spec.tensor_name = "data"
    spec.target_width = spec.target_height = 224
    for key, value in fields.items():
        setattr(spec, key, value)
    return spec


def whole(
    *images: _core.ImageInputSpec, constants: tuple[_core.ConstantInputSpec, ...] = ()
) -> _core.PreprocessingSpec:
    spec = _core.PreprocessingSpec()
    spec.image_inputs = list(images)
    spec.constant_inputs = list(constants)
    return spec


def constant(
    shape: list[int], data: list[_core.ConstantValue], name: str = "info"
) -> _core.ConstantInputSpec:
    spec = _core.ConstantInputSpec()
    spec.tensor_name, spec.shape, spec.data = name, shape, data
    return spec


MEAN_3x4x4 = _core.MeanImage(np.zeros((3, 4, 4), np.float32))


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (whole, "inputs"),
        (lambda: whole(image(tensor_name="")), "inputs[0].tensor_name"),
        (lambda: whole(image(), image()), "inputs[1].tensor_name"),
        (lambda: whole(image(target_width=0)), "inputs[0].image.target_size"),
        (lambda: whole(image(target_height=20000)), "inputs[0].image.target_size"),
        (lambda: whole(image(resize_type=_core.ResizeType.NETWORK)), "inputs[0].image.target_size"),
        (lambda: whole(image(pixel_scaling=0.0)), "inputs[0].image.pixel_scaling"),
        (lambda: whole(image(pixel_scaling=float("nan"))), "inputs[0].image.pixel_scaling"),
        (lambda: whole(image(mean=[1.0])), "inputs[0].image.mean"),
        (lambda: whole(image(std=[1.0, 0.0, 1.0])), "inputs[0].image.std"),
        (lambda: whole(image(std=[1.0, float("inf"), 1.0])), "inputs[0].image.std"),
        (
            lambda: whole(image(crop_ratio=1.5, resize_type=_core.ResizeType.CROP)),
            "inputs[0].image.crop_ratio",
        ),
        (lambda: whole(image(crop_ratio=0.5)), "inputs[0].image.crop_ratio"),  # SQUASH
        (
            lambda: whole(image(crop_ratio=0.01, resize_type=_core.ResizeType.CROP)),
            "inputs[0].image.crop_ratio",
        ),
        (lambda: whole(image(pad_value=[1.0, 2.0])), "inputs[0].image.pad_value"),
        (lambda: whole(image(pad_value=[256.0])), "inputs[0].image.pad_value"),
        (lambda: whole(image(stride=32)), "inputs[0].image.stride"),
        (lambda: whole(image(max_size=-1)), "inputs[0].image.max_size"),
        (
            lambda: whole(image(antialias=True, interpolation=_core.Interpolation.AREA)),
            "inputs[0].image.antialias",
        ),
        (
            lambda: whole(image(antialias=True, interpolation=_core.Interpolation.NEAREST)),
            "inputs[0].image.antialias",
        ),
        (
            lambda: whole(image(color_channels=_core.ColorChannels.L, mean_file=MEAN_3x4x4)),
            "inputs[0].image.mean_file",
        ),
        (lambda: whole(image(input_index=4, mean=[1.0])), "inputs[4].image.mean"),
        (
            lambda: whole(image(), constants=(constant([2], [_core.ConstantValue(1.0)]),)),
            "inputs[1].constant.data",
        ),
        (lambda: whole(image(), constants=(constant([0], []),)), "inputs[1].constant.shape"),
        (
            lambda: whole(image(), constants=(constant([1], [_core.ConstantValue("image", 1)]),)),
            "inputs[1].constant.data[0]",
        ),
        (
            lambda: whole(image(), constants=(constant([1], [_core.ConstantValue("data", 3)]),)),
            "inputs[1].constant.data[0]",
        ),
        (
            lambda: whole(image(), constants=(constant([1], [_core.ConstantValue(1.0)], name="data"),)),
            "inputs[1].tensor_name",
        ),
    ],
)
def test_bad_specs_name_their_field(build: Callable[[], _core.PreprocessingSpec], field: str) -> None:
    spec = build()
    with pytest.raises(InvalidArgumentError) as error:
        _core.validate_preprocessing(spec)
    assert error.value.field == field
    if spec.image_inputs:
        with pytest.raises(InvalidArgumentError):
            _core.BatchPreprocessor(spec)


def test_good_specs_pass() -> None:
    _core.validate_preprocessing(whole(image()))
    network = image(resize_type=_core.ResizeType.NETWORK, target_width=0, target_height=800, stride=32)
    faster_rcnn = constant(
        [3], [_core.ConstantValue("data", 1), _core.ConstantValue("data", 2), _core.ConstantValue(1.0)]
    )
    _core.validate_preprocessing(whole(network, constants=(faster_rcnn,)))
    _core.ImagePreprocessor(
        image(color_channels=_core.ColorChannels.L, mean=[0.5], std=[0.2], pad_value=[3.0])
    )
    _core.ImagePreprocessor(image(antialias=True, interpolation=_core.Interpolation.CUBIC))
