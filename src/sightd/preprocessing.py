"""A network's v0.7 ``preprocessing`` document: validation, conversion to the core's spec, and back.

``parse_preprocessing(document, files)`` checks the whole document (every field, v0.7 and the documented
extensions; docs/preprocessing.md) and raises one ``PreprocessingError`` listing every violation as a
(field path, message) pair, such as ``("inputs[0].image.target_size", "...")``; the gRPC service turns each
pair into a field violation. ``files`` holds the uploaded files by name, where ``mean_file`` looks them up.
``preprocessing_to_document(spec, mean_file_names)`` gives the canonical document of a spec.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from sightd import _core
from sightd.errors import CoreError, InvalidArgumentError

__all__ = ["PreprocessingError", "parse_preprocessing", "preprocessing_to_document"]

Violation = tuple[str, str]

RESIZE_TYPES = {
    "SQUASH": _core.ResizeType.SQUASH,
    "CROP": _core.ResizeType.CROP,
    "NETWORK": _core.ResizeType.NETWORK,
    "LETTERBOX": _core.ResizeType.LETTERBOX,
}
DATA_TYPES = {"FLOAT32": _core.DataType.FLOAT32, "UINT8": _core.DataType.UINT8}
DIMENSION_ORDERS = {"NCHW": _core.DimensionOrder.NCHW, "NHWC": _core.DimensionOrder.NHWC}
COLOR_CHANNELS = {
    "BGR": _core.ColorChannels.BGR,
    "RGB": _core.ColorChannels.RGB,
    "L": _core.ColorChannels.L,
    "GRAY": _core.ColorChannels.L,
}
INTERPOLATIONS = {
    "LINEAR": _core.Interpolation.LINEAR,
    "AREA": _core.Interpolation.AREA,
    "CUBIC": _core.Interpolation.CUBIC,
    "NEAREST": _core.Interpolation.NEAREST,
}
LETTERBOX_ALIGNS = {"CENTER": _core.LetterboxAlign.CENTER, "TOP_LEFT": _core.LetterboxAlign.TOP_LEFT}

MAX_SIDE = 16384
IMAGE_FIELDS = frozenset(
    [
        "resize_type",
        "data_type",
        "dimension_order",
        "pixel_scaling",
        "mean_file",
        "target_size",
        "color_channels",
        "mean",
        "std",
        "crop_ratio",
        "pad_value",
        "letterbox_align",
        "max_size",
        "stride",
        "interpolation",
        "antialias",
    ]
)
_SIZE = re.compile(r"^\s*(\d{1,6})\s*(?:[xX]\s*(\d{1,6})\s*)?$")
_REFERENCE = re.compile(r"^(.+)\.(\d+)$")


class PreprocessingError(InvalidArgumentError):
    """A preprocessing document with one or more violations.

    ``violations`` lists every (field path, message) pair found; ``field`` and ``message`` are the first
    one's (the message also counts the others), so callers that handle one field still say something useful.
    """

    def __init__(self, violations: list[Violation]) -> None:
        field, message = violations[0]
        if len(violations) > 1:
            message += f" (and {len(violations) - 1} more problem{'s' if len(violations) > 2 else ''})"
        super().__init__(message, field=field)
        self.violations = list(violations)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Checker:
    """Collects violations while building the core's spec."""

    def __init__(self) -> None:
        self.violations: list[Violation] = []

    def fail(self, field: str, message: str) -> None:
        self.violations.append((field, message))

    def choice(
        self, image: Mapping[str, Any], key: str, choices: Mapping[str, Any], default: str | None, path: str
    ) -> Any:
        """The enum value of `key`; `default` None means the field is required."""
        if key not in image and default is None:
            self.fail(f"{path}.{key}", f"is required (one of {', '.join(choices)})")
            return next(iter(choices.values()))
        value = image.get(key, default)
        if not isinstance(value, str) or value not in choices:
            self.fail(f"{path}.{key}", f"must be one of {', '.join(choices)}")
            return next(iter(choices.values()))
        return choices[value]

    def numbers(
        self, value: object, field: str, count: int, check: Callable[[float], bool], what: str
    ) -> list[float]:
        values: list[Any] = value if isinstance(value, list) else [value]
        if not values or not all(_is_number(v) for v in values):
            self.fail(
                field, "must be a number or a list of numbers" if count == 0 else "must be a list of numbers"
            )
            return []
        if count and len(values) != count:
            self.fail(
                field, f"needs {count} value{'s' if count > 1 else ''} (one per channel), got {len(values)}"
            )
            return []
        if not all(check(float(v)) for v in values):
            self.fail(field, what)
            return []
        return [float(v) for v in values]


def _target_size(checker: _Checker, image: Mapping[str, Any], resize: str, path: str) -> tuple[int, int]:
    """(width, height); NETWORK: (0, shorter side)."""
    field = f"{path}.target_size"
    value = image.get("target_size")
    if value is None:
        checker.fail(field, "is required")
        return 0, 0
    text = str(value) if _is_int(value) else value
    match = _SIZE.match(text) if isinstance(text, str) else None
    if match is None:
        checker.fail(field, 'must be "WIDTHxHEIGHT" (e.g. "224x224") or one number')
        return 0, 0
    width = int(match.group(1))
    height = int(match.group(2)) if match.group(2) is not None else None
    sides = [width] if height is None else [width, height]
    if not all(1 <= side <= MAX_SIDE for side in sides):
        checker.fail(field, f"sides must be in 1..{MAX_SIDE}")
        return 0, 0
    if resize == "NETWORK":
        if height is not None:
            checker.fail(field, 'NETWORK resizing takes one number, the shorter side (e.g. "800")')
            return 0, 0
        return 0, width
    return width, width if height is None else height


def _image_input(
    checker: _Checker, image: Mapping[str, Any], path: str, files: Mapping[str, bytes]
) -> _core.ImageInputSpec:
    spec = _core.ImageInputSpec()
    for key in sorted(set(image) - IMAGE_FIELDS):
        checker.fail(f"{path}.{key}", "unknown field")
    resize_name = image.get("resize_type")
    # Required as in the gRPC contract: v0.7's examples always give them, and a silent default would hide
    # a mistake that only shows as wrong predictions.
    spec.resize_type = checker.choice(image, "resize_type", RESIZE_TYPES, None, path)
    spec.data_type = checker.choice(image, "data_type", DATA_TYPES, None, path)
    spec.dimension_order = checker.choice(image, "dimension_order", DIMENSION_ORDERS, None, path)
    spec.color_channels = checker.choice(image, "color_channels", COLOR_CHANNELS, None, path)
    spec.interpolation = checker.choice(image, "interpolation", INTERPOLATIONS, "LINEAR", path)
    spec.letterbox_align = checker.choice(image, "letterbox_align", LETTERBOX_ALIGNS, "CENTER", path)
    channels = 1 if image.get("color_channels") in ("L", "GRAY") else 3

    scaling = image.get("pixel_scaling", 255.0)
    if _is_number(scaling) and scaling > 0:
        spec.pixel_scaling = float(scaling)
    else:
        checker.fail(f"{path}.pixel_scaling", "must be a positive number")
    spec.target_width, spec.target_height = _target_size(checker, image, str(resize_name), path)

    mean_file = image.get("mean_file", "")
    if not isinstance(mean_file, str):
        checker.fail(f"{path}.mean_file", "must be a file name (empty for none)")
    elif mean_file:
        if mean_file not in files:
            checker.fail(f"{path}.mean_file", f"'{mean_file}' is not among the uploaded files")
        else:
            try:
                mean = _core.parse_mean_file(files[mean_file])
            except CoreError as error:
                checker.fail(f"{path}.mean_file", f"'{mean_file}': {error.message}")
            else:
                if mean.channels != channels:
                    checker.fail(
                        f"{path}.mean_file",
                        f"'{mean_file}' has {mean.channels} channels; the input has {channels}",
                    )
                spec.mean_file = mean

    if "mean" in image:
        spec.mean = checker.numbers(image["mean"], f"{path}.mean", channels, math.isfinite, "must be finite")
    if "std" in image:
        spec.std = checker.numbers(image["std"], f"{path}.std", channels, lambda v: v > 0, "must be positive")
    if "crop_ratio" in image:
        ratio = image["crop_ratio"]
        if resize_name != "CROP":
            checker.fail(f"{path}.crop_ratio", "only applies to CROP resizing")
        elif not (_is_number(ratio) and 0 < ratio <= 1):
            checker.fail(f"{path}.crop_ratio", "must be a number in (0, 1]")
        elif max(spec.target_width, spec.target_height) / ratio > MAX_SIDE:
            checker.fail(f"{path}.crop_ratio", f"too small: the scaled image would exceed {MAX_SIDE} pixels")
        else:
            spec.crop_ratio = float(ratio)
    if "pad_value" in image:
        if resize_name not in ("LETTERBOX", "NETWORK"):
            checker.fail(f"{path}.pad_value", "only applies to LETTERBOX and NETWORK resizing")
        else:
            pad = checker.numbers(
                image["pad_value"],
                f"{path}.pad_value",
                0,
                lambda v: 0 <= v <= 255,
                "values must be in 0..255",
            )
            if pad and len(pad) not in (1, channels):
                checker.fail(f"{path}.pad_value", f"needs one value or {channels}")
            else:
                spec.pad_value = pad
    if "letterbox_align" in image and resize_name != "LETTERBOX":
        checker.fail(f"{path}.letterbox_align", "only applies to LETTERBOX resizing")
    for key, limit in (("max_size", MAX_SIDE), ("stride", 4096)):
        if key not in image:
            continue
        value = image[key]
        if resize_name != "NETWORK":
            checker.fail(f"{path}.{key}", "only applies to NETWORK resizing")
        elif not (_is_int(value) and 1 <= value <= limit):
            checker.fail(f"{path}.{key}", f"must be an integer in 1..{limit}")
        else:
            setattr(spec, key, value)
    if "antialias" in image:
        antialias = image["antialias"]
        if not isinstance(antialias, bool):
            checker.fail(f"{path}.antialias", "must be true or false")
        elif antialias and image.get("interpolation") in ("AREA", "NEAREST"):
            checker.fail(f"{path}.antialias", "only applies to LINEAR and CUBIC interpolation")
        else:
            spec.antialias = antialias
    return spec


def _constant_input(
    checker: _Checker, constant: object, path: str, image_names: set[str]
) -> _core.ConstantInputSpec | None:
    if not isinstance(constant, Mapping):
        checker.fail(path, "must be an object with shape and data")
        return None
    for key in sorted(set(constant) - {"shape", "data"}):
        checker.fail(f"{path}.{key}", "unknown field")
    spec = _core.ConstantInputSpec()
    shape = constant.get("shape")
    count = None
    if not (isinstance(shape, list) and shape and all(_is_int(d) and 1 <= d <= 1_000_000 for d in shape)):
        checker.fail(f"{path}.shape", "must be a non-empty list of positive integers")
    else:
        spec.shape = shape
        count = math.prod(shape)
    data = constant.get("data")
    if not isinstance(data, list):
        checker.fail(f"{path}.data", 'must be a list of numbers or "<tensor>.<N>" references')
        return spec
    if count is not None and len(data) != count:
        checker.fail(f"{path}.data", f"holds {len(data)} values; the shape needs {count}")
    values = []
    for k, item in enumerate(data):
        field = f"{path}.data[{k}]"
        if _is_number(item):
            values.append(_core.ConstantValue(float(item)))
            continue
        match = _REFERENCE.match(item) if isinstance(item, str) else None
        if match is None:
            checker.fail(field, 'must be a number or "<image tensor>.<dimension>"')
        elif match.group(1) not in image_names:
            checker.fail(field, f"'{match.group(1)}' is not an image input")
        elif int(match.group(2)) > 2:
            checker.fail(field, "an image tensor has dimensions 0, 1 and 2 (batch dimension excluded)")
        else:
            values.append(_core.ConstantValue(match.group(1), int(match.group(2))))
    spec.data = values
    return spec


def parse_preprocessing(
    document: object, files: Mapping[str, bytes] | None = None
) -> _core.PreprocessingSpec:
    """The core's spec of a v0.7 preprocessing document; raises PreprocessingError with every violation."""
    files = files or {}
    checker = _Checker()
    if not isinstance(document, Mapping):
        raise PreprocessingError([("preprocessing", "must be an object with inputs")])
    for key in sorted(set(document) - {"inputs", "batched_output"}):
        checker.fail(key, "unknown field")
    batched = document.get("batched_output", True)
    if not isinstance(batched, bool):
        checker.fail("batched_output", "must be true or false")
    inputs = document.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        checker.fail("inputs", "must be a non-empty list")
        raise PreprocessingError(checker.violations)

    names: dict[str, int] = {}
    image_names = {
        entry["tensor_name"]
        for entry in inputs
        if isinstance(entry, Mapping) and "image" in entry and isinstance(entry.get("tensor_name"), str)
    }
    spec = _core.PreprocessingSpec()
    spec.batched_output = batched is not False
    image_inputs: list[_core.ImageInputSpec] = []
    constant_inputs: list[_core.ConstantInputSpec] = []
    for index, entry in enumerate(inputs):
        path = f"inputs[{index}]"
        if not isinstance(entry, Mapping):
            checker.fail(path, "must be an object")
            continue
        for key in sorted(set(entry) - {"tensor_name", "image", "constant"}):
            checker.fail(f"{path}.{key}", "unknown field")
        name = entry.get("tensor_name")
        if not isinstance(name, str) or not name:
            checker.fail(f"{path}.tensor_name", "must be a non-empty string")
            name = ""
        elif name in names:
            checker.fail(f"{path}.tensor_name", f"tensor '{name}' is already fed by inputs[{names[name]}]")
        else:
            names[name] = index
        if ("image" in entry) == ("constant" in entry):
            checker.fail(path, "needs exactly one of image and constant")
        elif "image" in entry:
            image = entry["image"]
            if not isinstance(image, Mapping):
                checker.fail(f"{path}.image", "must be an object")
                continue
            image_spec = _image_input(checker, image, f"{path}.image", files)
            image_spec.tensor_name, image_spec.input_index = name, index
            image_inputs.append(image_spec)
        else:
            constant = _constant_input(checker, entry["constant"], f"{path}.constant", image_names)
            if constant is not None:
                constant.tensor_name, constant.input_index = name, index
                constant_inputs.append(constant)
    if not image_inputs and not any(field.startswith("inputs[") for field, _ in checker.violations):
        checker.fail("inputs", "needs at least one image input")
    if checker.violations:
        raise PreprocessingError(checker.violations)
    spec.image_inputs = image_inputs
    spec.constant_inputs = constant_inputs
    try:
        _core.validate_preprocessing(spec)  # the core's own checks: a second line that should never trip
    except CoreError as error:
        raise PreprocessingError([(error.field or "preprocessing", error.message)]) from error
    return spec


def _size_text(spec: _core.ImageInputSpec) -> str:
    if spec.resize_type == _core.ResizeType.NETWORK:
        return str(spec.target_height)
    return f"{spec.target_width}x{spec.target_height}"


def _numbers(values: list[float]) -> list[float | int]:
    return [int(v) if float(v).is_integer() else v for v in values]


def _image_document(spec: _core.ImageInputSpec, mean_file_name: str) -> dict[str, Any]:
    image: dict[str, Any] = {
        "resize_type": spec.resize_type.name,
        "data_type": spec.data_type.name,
        "dimension_order": spec.dimension_order.name,
        "pixel_scaling": spec.pixel_scaling,
        "mean_file": mean_file_name if spec.mean_file is not None else "",
        "target_size": _size_text(spec),
        "color_channels": spec.color_channels.name,
    }
    # Extensions only where they differ from their defaults: a plain v0.7 client sees plain v0.7.
    if spec.mean:
        image["mean"] = list(spec.mean)
    if spec.std:
        image["std"] = list(spec.std)
    if spec.crop_ratio != 1.0:
        image["crop_ratio"] = spec.crop_ratio
    if spec.pad_value:
        image["pad_value"] = _numbers(spec.pad_value)
    if spec.resize_type == _core.ResizeType.LETTERBOX and spec.letterbox_align != _core.LetterboxAlign.CENTER:
        image["letterbox_align"] = spec.letterbox_align.name
    if spec.max_size:
        image["max_size"] = spec.max_size
    if spec.stride:
        image["stride"] = spec.stride
    if spec.interpolation != _core.Interpolation.LINEAR:
        image["interpolation"] = spec.interpolation.name
    if spec.antialias:
        image["antialias"] = True
    return image


def preprocessing_to_document(
    spec: _core.PreprocessingSpec, mean_file_names: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The canonical v0.7 document of a spec. The spec holds a mean file's values, not its name:
    ``mean_file_names`` maps image tensor names to the names to show (default ``"<tensor_name>.npy"``).
    Inputs come in their original order (``input_index``), image inputs first where it is unknown."""
    names = mean_file_names or {}
    entries: list[tuple[int, dict[str, Any]]] = []
    position = 0
    for image in spec.image_inputs:
        name = names.get(image.tensor_name, f"{image.tensor_name}.npy")
        entry = {"tensor_name": image.tensor_name, "image": _image_document(image, name)}
        entries.append((image.input_index if image.input_index >= 0 else position, entry))
        position += 1
    for constant in spec.constant_inputs:
        data: list[Any] = [
            f"{value.tensor_name}.{value.dimension}" if value.tensor_name else _numbers([value.number])[0]
            for value in constant.data
        ]
        entry = {
            "tensor_name": constant.tensor_name,
            "constant": {"shape": list(constant.shape), "data": data},
        }
        entries.append((constant.input_index if constant.input_index >= 0 else position, entry))
        position += 1
    entries.sort(key=lambda item: item[0])
    return {"inputs": [entry for _, entry in entries], "batched_output": spec.batched_output}
