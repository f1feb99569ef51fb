"""face-api.js (TensorFlow.js) weights: a JSON manifest plus binary shards, optionally uint8-quantised.

The manifest is a list of groups ``{"paths": [shard files], "weights": [{"name", "shape", "dtype",
"quantization": {"dtype": "uint8", "scale", "min"}}]}``. A group's shards, concatenated, hold its tensors
back to back in manifest order; a quantised value is ``byte * scale + min``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np


class ManifestError(ValueError):
    """A manifest or shard that does not describe its tensors exactly."""


_DTYPES: dict[str, np.dtype[Any]] = {"float32": np.dtype("<f4"), "int32": np.dtype("<i4")}


def _tensor(spec: Any, data: bytes, offset: int) -> tuple[np.ndarray, int]:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ManifestError("a manifest weight entry lacks a name")
    name, shape = spec["name"], spec.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ManifestError(f"{name}: bad shape {shape!r}")
    count = math.prod(shape)
    quantization = spec.get("quantization")
    if quantization is not None:
        if quantization.get("dtype") != "uint8":
            raise ManifestError(f"{name}: unsupported quantisation {quantization.get('dtype')!r}")
        raw = (
            np.frombuffer(data, dtype=np.uint8, count=count, offset=offset)
            if count
            else np.zeros(0, np.uint8)
        )
        scale, minimum = float(quantization["scale"]), float(quantization["min"])
        values = (raw.astype(np.float64) * scale + minimum).astype(np.float32)
        size = count
    else:
        dtype = _DTYPES.get(spec.get("dtype", ""))
        if dtype is None:
            raise ManifestError(f"{name}: unsupported dtype {spec.get('dtype')!r}")
        size = count * dtype.itemsize
        if offset + size > len(data):
            raise ManifestError(f"{name}: the shards end before this tensor does")
        values = np.frombuffer(data, dtype=dtype, count=count, offset=offset).astype(dtype.newbyteorder("="))
    if offset + size > len(data):
        raise ManifestError(f"{name}: the shards end before this tensor does")
    return values.reshape(shape), offset + size


def load_weights(manifest: bytes | str, read_shard: Callable[[str], bytes]) -> dict[str, np.ndarray]:
    """The tensors a manifest describes (name -> array, float32 after dequantisation), in manifest order."""
    try:
        groups = json.loads(manifest)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"manifest is not JSON: {exc}") from exc
    if not isinstance(groups, list):
        raise ManifestError("a weights manifest is a list of groups")
    tensors: dict[str, np.ndarray] = {}
    for group in groups:
        if not isinstance(group, dict) or not isinstance(group.get("paths"), list):
            raise ManifestError("a manifest group lacks its shard paths")
        data = b"".join(read_shard(path) for path in group["paths"])
        offset = 0
        for spec in group.get("weights", []):
            array, offset = _tensor(spec, data, offset)
            if spec["name"] in tensors:
                raise ManifestError(f"{spec['name']} appears twice")
            tensors[spec["name"]] = array
        if offset != len(data):
            raise ManifestError(f"shards {group['paths']} hold {len(data) - offset} bytes no tensor uses")
    return tensors
