"""PyTorch's legacy (non-zip) checkpoint format, read into NumPy arrays without torch.

A legacy file (``torch.save(..., _use_new_zipfile_serialization=False)``, the default before PyTorch 1.6) is
five pickles in a row, then raw storage bytes:

1. the magic number ``0x1950a86a20f9469cfc6c``;
2. the protocol version, ``1001``;
3. system information: ``{"protocol_version", "little_endian", "type_sizes"}``;
4. the saved object (here a state dict) whose tensors are ``torch._utils._rebuild_tensor_v2(storage, offset,
   size, stride, ...)`` calls and whose storages are persistent ids
   ``("storage", <torch.XStorage>, key, location, numel, view_metadata)``;
5. the storage keys, in the order their data follows;

then, for each key: the element count as a little-endian int64 and the elements.

Pickles can run arbitrary code when loaded. This reader resolves only the few globals a state dict needs
(``collections.OrderedDict``, the tensor rebuild functions and the storage types) to harmless stand-ins and
refuses every other global before anything is called.
"""

from __future__ import annotations

import collections
import io
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

_STORAGE_DTYPES: dict[str, np.dtype[Any]] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class CheckpointError(ValueError):
    """The file is not a legacy PyTorch checkpoint this reader accepts (or tries to run code)."""


@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype[Any]


@dataclass(frozen=True)
class _StorageRef:
    key: str
    dtype: np.dtype[Any]
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage: object, offset: object, size: object, stride: object, *_: object) -> _TensorRef:
    if not isinstance(storage, _StorageRef):
        raise CheckpointError("a tensor refers to something that is not a storage")
    if not isinstance(offset, int) or not isinstance(size, tuple) or not isinstance(stride, tuple):
        raise CheckpointError("malformed tensor (offset, size, stride)")
    if len(size) != len(stride) or not all(isinstance(v, int) and v >= 0 for v in size + stride):
        raise CheckpointError("malformed tensor size or stride")
    return _TensorRef(storage, offset, size, stride)


def _rebuild_parameter(data: object, *_: object) -> object:
    return data


class _RestrictedUnpickler(pickle.Unpickler):
    _GLOBALS: ClassVar[dict[tuple[str, str], object]] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        **{("torch", name): _StorageType(dtype) for name, dtype in _STORAGE_DTYPES.items()},
    }

    def __init__(self, stream: io.BytesIO, storages: dict[str, _StorageRef]) -> None:
        super().__init__(stream)
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._GLOBALS[(module, name)]
        except KeyError:
            raise CheckpointError(
                f"refusing to load the global {module}.{name}: not part of a state dict"
            ) from None

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise CheckpointError(f"unsupported persistent id {pid!r:.80}")
        storage_type, key, _location, numel = pid[1:5]
        if len(pid) == 6 and pid[5] is not None:
            raise CheckpointError("storage views are not supported")
        if (
            not isinstance(storage_type, _StorageType)
            or not isinstance(key, str)
            or not isinstance(numel, int)
        ):
            raise CheckpointError("malformed storage reference")
        known = self._storages.get(key)
        if known is None:
            known = self._storages[key] = _StorageRef(key, storage_type.dtype, numel)
        elif known.dtype != storage_type.dtype or known.numel != numel:
            raise CheckpointError(f"storage {key} is referred to with different types or sizes")
        return known


def _load_one(stream: io.BytesIO, storages: dict[str, _StorageRef]) -> Any:
    try:
        return _RestrictedUnpickler(stream, storages).load()
    except CheckpointError:
        raise
    except Exception as exc:  # malformed pickle data of any kind
        raise CheckpointError(f"not a legacy PyTorch checkpoint: {exc}") from exc


def _materialise(tensor: _TensorRef, data: dict[str, np.ndarray]) -> np.ndarray:
    flat = data[tensor.storage.key]
    if any(v == 0 for v in tensor.size):
        return np.zeros(tensor.size, dtype=flat.dtype)
    last = tensor.offset + sum((n - 1) * s for n, s in zip(tensor.size, tensor.stride, strict=True))
    if tensor.offset < 0 or last >= flat.size:
        raise CheckpointError(f"a tensor of storage {tensor.storage.key} reaches past its end")
    view = np.lib.stride_tricks.as_strided(
        flat[tensor.offset :],
        shape=tensor.size,
        strides=tuple(s * flat.itemsize for s in tensor.stride),
        writeable=False,
    )
    return np.array(view, dtype=flat.dtype.newbyteorder("="))


def load_state_dict(data: bytes) -> dict[str, np.ndarray]:
    """The tensors of a legacy checkpoint holding a state dict (name -> tensor), as NumPy arrays."""
    stream = io.BytesIO(data)
    storages: dict[str, _StorageRef] = {}
    if _load_one(stream, storages) != MAGIC_NUMBER:
        raise CheckpointError("not a legacy PyTorch checkpoint (bad magic number)")
    if _load_one(stream, storages) != PROTOCOL_VERSION:
        raise CheckpointError("unsupported legacy checkpoint protocol version")
    info = _load_one(stream, storages)
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise CheckpointError("only little-endian checkpoints are supported")
    state = _load_one(stream, storages)
    keys = _load_one(stream, storages)
    if not isinstance(keys, list) or set(keys) != set(storages):
        raise CheckpointError("the storage key list does not match the storages the tensors use")
    arrays: dict[str, np.ndarray] = {}
    for key in keys:
        ref = storages[key]
        header = stream.read(8)
        if len(header) != 8 or int.from_bytes(header, "little", signed=True) != ref.numel:
            raise CheckpointError(f"storage {key}: element count missing or different from its reference")
        raw = stream.read(ref.numel * ref.dtype.itemsize)
        if len(raw) != ref.numel * ref.dtype.itemsize:
            raise CheckpointError(f"storage {key} is truncated")
        arrays[key] = np.frombuffer(raw, dtype=ref.dtype)
    if not isinstance(state, dict):
        raise CheckpointError("the checkpoint does not hold a state dict")
    result: dict[str, np.ndarray] = {}
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, _TensorRef):
            raise CheckpointError(f"state dict entry {name!r:.80} is not a named tensor")
        result[name] = _materialise(value, arrays)
    return result


# The callables find_class may hand to REDUCE: exported for the tests that check nothing else is reachable.
ALLOWED_CALLABLES: tuple[Callable[..., object], ...] = (
    collections.OrderedDict,
    _rebuild_tensor,
    _rebuild_parameter,
)
