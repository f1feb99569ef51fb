"""The ONNX Runtime engine of the core, checked against onnxruntime's own Python API on the same graphs."""

from __future__ import annotations

import gc
import importlib.util
import logging
import threading
from pathlib import Path

import engine_graphs as graphs
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from sightd import _core, engine
from sightd.errors import EngineError, InvalidArgumentError


def reference(model: bytes, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)  # type: ignore[no-any-return]


def ort_shape(dims: list[int | str | None]) -> tuple[list[int], list[str]]:
    """onnxruntime's NodeArg.shape as (-1 for dynamic dimensions, their symbolic names)."""
    return (
        [d if isinstance(d, int) else -1 for d in dims],
        [d if isinstance(d, str) else "" for d in dims],
    )


def test_library_is_found_in_the_wheel_and_loaded() -> None:
    path = engine.find_onnxruntime_library()
    spec = importlib.util.find_spec("onnxruntime")
    assert spec is not None
    assert spec.submodule_search_locations
    assert path.parent == Path(spec.submodule_search_locations[0]) / "capi"
    assert path.name.startswith("libonnxruntime.so.")
    assert engine.load_onnxruntime() == ort.__version__
    assert _core.onnxruntime_loaded()
    assert Path(_core.onnxruntime_library_path()) == path.resolve()
    assert set(_core.available_providers()) == set(ort.get_available_providers())
    # Loading the same file again is a no-op.
    engine.load_onnxruntime(path)


def test_another_library_is_refused_once_loaded(tmp_path: Path) -> None:
    engine.load_onnxruntime()
    other = tmp_path / "libonnxruntime.so.9.9.9"
    other.write_bytes(b"\x7fELF not really")
    with pytest.raises(InvalidArgumentError) as info:
        engine.load_onnxruntime(other)
    assert info.value.field == "library_path"
    assert "already loaded" in str(info.value)


def test_missing_onnxruntime_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "onnxruntime" else real_find_spec(name, *args),
    )
    monkeypatch.delenv(engine.LIBRARY_ENV, raising=False)
    with pytest.raises(EngineError, match="install the `onnxruntime` package"):
        engine.find_onnxruntime_library()


def test_library_override_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(engine.LIBRARY_ENV, str(tmp_path / "nothing.so"))
    with pytest.raises(EngineError, match="is not a file"):
        engine.find_onnxruntime_library()


@pytest.mark.parametrize(
    ("model", "feeds"),
    [
        (graphs.affine(), {"x": np.linspace(-3, 3, 12, dtype=np.float32).reshape(4, 3)}),
        (
            graphs.two_inputs(),
            {
                "a": np.arange(8, dtype=np.float32).reshape(2, 4),
                "b": np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4),
            },
        ),
        (graphs.uint8_to_argmax(), {"pixels": np.array([[3, 9, 255, 0, 7], [200, 1, 2, 3, 4]], np.uint8)}),
        (graphs.affine(batch=1), {"x": np.array([[0.5, -2.0, 8.0]], np.float32)}),
        (graphs.matmul_chain(), {"x": np.random.default_rng(1).standard_normal((5, 96)).astype(np.float32)}),
    ],
    ids=["dynamic-batch", "two-inputs", "uint8-in-int64-out", "fixed-batch-1", "matmul"],
)
def test_runs_match_onnxruntime(model: bytes, feeds: dict[str, np.ndarray]) -> None:
    session = engine.create_session(model, execution_provider="cpu")
    expected = reference(model, feeds)
    got = session.run(feeds)
    assert [o.name for o in session.outputs] == [o.name for o in ort.InferenceSession(model).get_outputs()]
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == e.dtype
        assert g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-6)


def test_named_outputs_come_in_the_order_asked() -> None:
    model = graphs.uint8_to_argmax()
    pixels = np.array([[1, 2, 3, 4, 5], [9, 8, 7, 6, 5], [0, 0, 9, 0, 0]], np.uint8)
    session = engine.create_session(model)
    best, scaled = session.run({"pixels": pixels}, ["best", "scaled"])
    assert best.dtype == np.int64
    np.testing.assert_array_equal(best, [4, 0, 2])
    np.testing.assert_allclose(scaled, pixels / np.float32(255), rtol=1e-6)
    (only,) = session.run({"pixels": pixels}, ["best"])
    np.testing.assert_array_equal(only, best)


def test_introspection_matches_onnxruntime() -> None:
    model = graphs.model_bytes(
        [
            helper.make_node("Identity", ["images"], ["same"]),
            helper.make_node("Shape", ["images"], ["shape"]),
        ],
        [graphs.value("images", TensorProto.UINT8, ["batch", 3, None, 224])],
        [
            graphs.value("same", TensorProto.UINT8, ["batch", 3, None, 224]),
            graphs.value("shape", TensorProto.INT64, [4]),
        ],
    )
    session = engine.create_session(model)
    reference_session = ort.InferenceSession(model)
    for ours, theirs in [
        (session.inputs, reference_session.get_inputs()),
        (session.outputs, reference_session.get_outputs()),
    ]:
        assert [info.name for info in ours] == [arg.name for arg in theirs]
        for info, arg in zip(ours, theirs, strict=True):
            shape, names = ort_shape(arg.shape)
            assert info.shape == shape
            assert info.dim_names == names
    images = session.inputs[0]
    assert (images.dtype, images.element_type) == ("uint8", TensorProto.UINT8)
    assert images.shape == [-1, 3, -1, 224]
    assert images.dim_names == ["batch", "", "", ""]
    assert session.outputs[1].dtype == "int64"
    assert engine.describe_tensors(session.inputs) == ["images uint8 [batch, 3, ?, 224]"]


def test_outputs_share_onnxruntime_memory_and_outlive_the_session() -> None:
    model = graphs.affine()
    session = engine.create_session(model)
    x = np.ones((2, 3), np.float32)
    (y,) = session.run({"x": x})
    # No copy: the array views memory owned by something else (the Ort::Value), kept alive by its base.
    assert not y.flags.owndata
    assert y.base is not None
    del session
    gc.collect()
    np.testing.assert_array_equal(y, np.full((2, 3), 3.0, np.float32))


def test_non_contiguous_and_empty_feeds() -> None:
    session = engine.create_session(graphs.affine())
    x = np.arange(24, dtype=np.float32).reshape(8, 3)[::2]
    (y,) = session.run({"x": x})
    np.testing.assert_array_equal(y, 2 * x + 1)
    (empty,) = session.run({"x": np.zeros((0, 3), np.float32)})
    assert empty.shape == (0, 3)


def test_concurrent_runs_on_one_session_from_python_threads() -> None:
    model = graphs.matmul_chain()
    session = engine.create_session(model, intra_op_threads=1)
    rng = np.random.default_rng(7)
    batches = [rng.standard_normal((int(rng.integers(1, 9)), 96)).astype(np.float32) for _ in range(24)]
    expected = [reference(model, {"x": batch})[0] for batch in batches]
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def worker(first: int) -> None:
        try:
            start.wait()
            for index in range(first, len(batches), 4):
                for _ in range(3):
                    (y,) = session.run({"x": batches[index]})
                    previous = results.setdefault(index, y)
                    np.testing.assert_array_equal(previous, y)
        except BaseException as error:  # collected for the main thread to report
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    for index, want in enumerate(expected):
        np.testing.assert_allclose(results[index], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("feeds", "outputs", "field", "message"),
    [
        (
            {"a": np.zeros((2, 4), np.float32), "c": np.zeros((2, 4), np.float32)},
            (),
            "c",
            "no input named 'c'",
        ),
        ({"a": np.zeros((2, 4), np.float32)}, (), "b", "required but not fed"),
        (
            {"a": np.zeros((2, 4)), "b": np.zeros((2, 4), np.float32)},
            (),
            "a",
            "takes tensor(float), got float64",
        ),
        ({"a": np.zeros((2, 4, 1), np.float32), "b": np.zeros((2, 4), np.float32)}, (), "a", "takes rank 2"),
        (
            {"a": np.zeros((2, 4), np.float32), "b": np.zeros((2, 5), np.float32)},
            (),
            "b",
            "dimension 1 fixed",
        ),
        (
            {"a": np.zeros((2, 4), np.float32), "b": np.zeros((3, 4), np.float32)},
            (),
            "b",
            "dimension 'N' is 3",
        ),
        (
            {"a": np.zeros((2, 4), np.float32), "b": np.zeros((2, 4), np.float32)},
            ("sum", "mean"),
            "mean",
            "no output",
        ),
        ({"a": [[1, 2, 3, 4]], "b": np.zeros((1, 4), np.float32)}, (), "a", "got int64"),
        ({"a": np.array(["x"] * 8).reshape(2, 4), "b": np.zeros((2, 4), np.float32)}, (), "a", "unsupported"),
    ],
    ids=["unknown", "missing", "dtype", "rank", "fixed-dim", "symbolic-dim", "output", "list", "strings"],
)
def test_bad_feeds_are_invalid_arguments_naming_the_input(
    feeds: dict[str, object], outputs: tuple[str, ...], field: str, message: str
) -> None:
    session = engine.create_session(graphs.two_inputs())
    with pytest.raises(InvalidArgumentError) as info:
        session.run(feeds, list(outputs))  # type: ignore[arg-type]
    assert info.value.field == field
    assert message in str(info.value)


def test_fixed_batch_dimension_is_checked() -> None:
    session = engine.create_session(graphs.affine(batch=1))
    with pytest.raises(InvalidArgumentError, match=r"takes shape \[1, 3\]") as info:
        session.run({"x": np.zeros((2, 3), np.float32)})
    assert info.value.field == "x"


def test_runtime_failures_are_engine_errors() -> None:
    # Reshape to a size the data does not have: only ONNX Runtime can tell, at run time.
    model = graphs.model_bytes(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        [graphs.value("x", TensorProto.FLOAT, ["N"]), graphs.value("shape", TensorProto.INT64, [2])],
        [graphs.value("y", TensorProto.FLOAT, [None, None])],
    )
    session = engine.create_session(model)
    (y,) = session.run({"x": np.arange(6, dtype=np.float32), "shape": np.array([2, 3])})
    assert y.shape == (2, 3)
    with pytest.raises(EngineError, match="Reshape"):
        session.run({"x": np.arange(5, dtype=np.float32), "shape": np.array([2, 3])})


def test_corrupt_and_missing_models_are_engine_errors(tmp_path: Path) -> None:
    good = graphs.affine()
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(good[: len(good) // 2])
    with pytest.raises(EngineError, match="cannot load the model"):
        engine.create_session(corrupt)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(EngineError):
        engine.create_session(garbage)
    with pytest.raises(EngineError):
        engine.create_session(tmp_path / "absent.onnx")
    with pytest.raises(EngineError):
        engine.create_session(b"\x08\x07garbage")
    with pytest.raises(InvalidArgumentError):
        engine.create_session(b"")
    # An unknown operator is refused at load time too.
    unknown = onnx.load_from_string(good)
    unknown.graph.node[0].op_type = "NoSuchOperator"
    with pytest.raises(EngineError, match="NoSuchOperator"):
        engine.create_session(unknown.SerializeToString())


def test_model_from_path_and_from_bytes_agree(tmp_path: Path) -> None:
    model = graphs.matmul_chain(size=16, depth=2)
    path = tmp_path / "model.onnx"
    path.write_bytes(model)
    x = np.random.default_rng(3).standard_normal((3, 16)).astype(np.float32)
    from_path = engine.create_session(path, optimization="disabled", intra_op_threads=1, inter_op_threads=2)
    from_bytes = engine.create_session(bytearray(model), optimization="basic")
    np.testing.assert_allclose(from_path.run({"x": x})[0], from_bytes.run({"x": x})[0], rtol=1e-6)


def test_workers_that_do_not_spin_compute_the_same() -> None:
    model = graphs.matmul_chain(size=64, depth=3)
    x = np.random.default_rng(4).standard_normal((4, 64)).astype(np.float32)
    assert engine.session_options().allow_spinning
    assert not engine.session_options(allow_spinning=False).allow_spinning
    sleeping = engine.create_session(model, intra_op_threads=2, allow_spinning=False)
    np.testing.assert_allclose(sleeping.run({"x": x})[0], reference(model, {"x": x})[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"execution_provider": "tpu"}, "execution_provider"),
        ({"optimization": "max"}, "optimization"),
        ({"intra_op_threads": -1}, "intra_op_threads"),
        ({"inter_op_threads": 100000}, "inter_op_threads"),
        ({"device_id": -2}, "device_id"),
    ],
)
def test_bad_session_options(options: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        engine.create_session(graphs.affine(), **options)  # type: ignore[arg-type]
    assert info.value.field == field


def test_cuda_request_falls_back_to_cpu_with_a_reason(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sightd.engine"):
        session = engine.create_session(graphs.affine(), execution_provider="cuda")
    if (
        session.provider == "CUDAExecutionProvider"
    ):  # a GPU machine with onnxruntime-gpu: nothing to fall back
        assert session.fallback_reason == ""
        return
    assert session.provider == "CPUExecutionProvider"
    assert "CUDAExecutionProvider could not be used" in session.fallback_reason
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert "install onnxruntime-gpu" in session.fallback_reason
    warnings = [r for r in caplog.records if r.name == "sightd.engine" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert session.fallback_reason in warnings[0].getMessage()
    # The fallback session works.
    (y,) = session.run({"x": np.zeros((1, 3), np.float32)})
    np.testing.assert_array_equal(y, np.ones((1, 3), np.float32))


def test_auto_and_cpu_do_not_warn_on_a_cpu_build(caplog: pytest.LogCaptureFixture) -> None:
    if "CUDAExecutionProvider" in _core.available_providers():
        pytest.skip("a GPU build of ONNX Runtime: auto tries CUDA")
    with caplog.at_level(logging.WARNING, logger="sightd.engine"):
        for provider in ("auto", "cpu"):
            session = engine.create_session(graphs.affine(), execution_provider=provider)
            assert session.provider == "CPUExecutionProvider"
            assert session.fallback_reason == ""
    assert not [r for r in caplog.records if r.name == "sightd.engine"]


def test_cuda_libraries_are_listed_like_onnxruntime_preload_dlls(monkeypatch: pytest.MonkeyPatch) -> None:
    # onnxruntime's own preload_dlls() list, for both CUDA generations, is the reference.
    for version in ("12.8", "13.0"):
        monkeypatch.setattr(ort, "cuda_version", version)
        expected = ort._get_nvidia_dll_paths(False, True, True)  # type: ignore[attr-defined]
        assert engine.cuda_library_paths(version) == [tuple(p) for p in expected]


def test_onnxruntime_warnings_go_to_logging(caplog: pytest.LogCaptureFixture) -> None:
    model = graphs.model_bytes(
        [helper.make_node("Relu", ["x"], ["y"])],
        [graphs.value("x", TensorProto.FLOAT, ["N", 3])],
        [graphs.value("y", TensorProto.FLOAT, ["N", 3])],
        [("unused_weight", np.ones((3, 3), np.float32))],
    )
    with caplog.at_level(logging.WARNING, logger="sightd.onnxruntime"):
        engine.create_session(model)
    messages = [r.getMessage() for r in caplog.records if r.name == "sightd.onnxruntime"]
    assert any("unused_weight" in m for m in messages), messages
    assert _core.take_onnxruntime_log() == []
