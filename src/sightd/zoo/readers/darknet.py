"""Darknet's model description (``.cfg``) and weights (``.weights``) files.

The cfg is an INI-like list of sections (``[net]``, ``[convolutional]``, ``[maxpool]``, ``[yolo]``...) that
may repeat, so it is read as an ordered list, not a mapping. The weights file starts with three int32
version fields (major, minor, revision) and the number of images seen during training: an int64 when
``major * 10 + minor >= 2`` (and both are below 1000, as darknet's parser checks), an int32 before; float32
values follow, consumed layer by layer in cfg order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class DarknetError(ValueError):
    """A cfg or weights file that darknet itself would not accept."""


@dataclass(frozen=True)
class Section:
    kind: str  # "net", "convolutional", "maxpool", "route", "upsample", "yolo", "region", ...
    options: dict[str, str] = field(default_factory=dict)

    def get_int(self, key: str, default: int | None = None) -> int:
        value = self.options.get(key)
        if value is None:
            if default is None:
                raise DarknetError(f"[{self.kind}] lacks {key}")
            return default
        try:
            return int(value)
        except ValueError:
            raise DarknetError(f"[{self.kind}] {key}={value} is not an integer") from None

    def get_ints(self, key: str) -> list[int]:
        value = self.options.get(key)
        if value is None:
            raise DarknetError(f"[{self.kind}] lacks {key}")
        try:
            return [int(v) for v in value.split(",") if v.strip()]
        except ValueError:
            raise DarknetError(f"[{self.kind}] {key}={value} is not a list of integers") from None


def parse_cfg(text: str) -> list[Section]:
    sections: list[Section] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                raise DarknetError(f"cfg line {number}: malformed section header {line!r}")
            sections.append(Section(line[1:-1].strip().lower()))
            continue
        if "=" not in line or not sections:
            raise DarknetError(f"cfg line {number}: expected key=value inside a section, got {line!r}")
        key, value = line.split("=", 1)
        sections[-1].options[key.strip()] = value.strip()
    if not sections or sections[0].kind not in ("net", "network"):
        raise DarknetError("a darknet cfg starts with a [net] section")
    return sections


@dataclass(frozen=True)
class Weights:
    major: int
    minor: int
    revision: int
    seen: int
    values: np.ndarray  # float32, every weight in file order


def parse_weights(data: bytes) -> Weights:
    if len(data) < 16:
        raise DarknetError("weights file too short for its header")
    major, minor, revision = (int(v) for v in np.frombuffer(data[:12], dtype="<i4"))
    if major * 10 + minor >= 2 and major < 1000 and minor < 1000:
        seen, start = int(np.frombuffer(data[12:20], dtype="<i8")[0]), 20
    else:
        seen, start = int(np.frombuffer(data[12:16], dtype="<i4")[0]), 16
    body = data[start:]
    if len(body) % 4:
        raise DarknetError("weights file body is not a whole number of float32 values")
    return Weights(major, minor, revision, seen, np.frombuffer(body, dtype="<f4").astype(np.float32))


class WeightReader:
    """Hands out consecutive slices of the weights; ``finish()`` checks that every value was used."""

    def __init__(self, weights: Weights) -> None:
        self._values = weights.values
        self._position = 0

    def take(self, count: int, shape: tuple[int, ...] | None = None) -> np.ndarray:
        end = self._position + count
        if end > self._values.size:
            raise DarknetError(f"weights file ends early: needs {end} values, has {self._values.size}")
        chunk = self._values[self._position : end]
        self._position = end
        return chunk.reshape(shape) if shape is not None else chunk

    def finish(self) -> None:
        if self._position != self._values.size:
            raise DarknetError(
                f"weights file has {self._values.size - self._position} values the cfg does not use"
            )
