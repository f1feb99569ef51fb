"""ONNX Runtime for the compiled core: finding the installed library, loading it, creating sessions.

The core does not link against ONNX Runtime: it ``dlopen()``s the library shipped in the ``onnxruntime``
(CPU) or ``onnxruntime-gpu`` (CUDA) wheel, whose path is found here without importing the ``onnxruntime``
Python package. Sessions are ``sightd._core.Session`` objects; ``create_session`` builds their options from
keyword arguments, preloads NVIDIA's CUDA libraries when CUDA may be used, and logs why a session asked to
run on CUDA fell back to CPU. See docs/engine.md.
"""

from __future__ import annotations

import ast
import ctypes
import functools
import importlib.util
import logging
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from sightd import _core
from sightd.errors import EngineError, InvalidArgumentError

LOGGER = logging.getLogger("sightd.engine")
# ONNX Runtime's own messages (warnings and errors), forwarded from the core's queue.
ORT_LOGGER = logging.getLogger("sightd.onnxruntime")

LIBRARY_ENV = "SIGHTD_ONNXRUNTIME_LIBRARY"
INSTALL_HINT = "install the `onnxruntime` package (CPU) or `onnxruntime-gpu` (NVIDIA CUDA), not both"

Provider = Literal["auto", "cpu", "cuda"]
Optimization = Literal["disabled", "basic", "extended", "all"]
PROVIDERS: tuple[str, ...] = ("auto", "cpu", "cuda")
OPTIMIZATIONS: dict[str, _core.GraphOptimization] = {
    "disabled": _core.GraphOptimization.DISABLED,
    "basic": _core.GraphOptimization.BASIC,
    "extended": _core.GraphOptimization.EXTENDED,
    "all": _core.GraphOptimization.ALL,
}
CUDA_PROVIDER = "CUDAExecutionProvider"

_LIBRARY_NAME = re.compile(r"libonnxruntime\.so(?:\.(\d+(?:\.\d+)*))?$")
_ORT_LEVELS = {0: logging.DEBUG, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR, 4: logging.CRITICAL}
_lock = threading.Lock()


def _onnxruntime_package_dirs() -> list[Path]:
    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        raise EngineError(f"ONNX Runtime is not installed: {INSTALL_HINT}")
    return [Path(location) for location in spec.submodule_search_locations]


def find_onnxruntime_library() -> Path:
    """The ONNX Runtime shared library to load: $SIGHTD_ONNXRUNTIME_LIBRARY, else the installed wheel's."""
    override = os.environ.get(LIBRARY_ENV)
    if override:
        path = Path(override)
        if not path.is_file():
            raise EngineError(f"{LIBRARY_ENV}={override} is not a file")
        return path
    candidates: list[tuple[tuple[int, ...], Path]] = []
    for package_dir in _onnxruntime_package_dirs():
        for path in (package_dir / "capi").glob("libonnxruntime.so*"):
            match = _LIBRARY_NAME.match(path.name)
            if match:
                version = tuple(int(part) for part in (match.group(1) or "0").split("."))
                candidates.append((version, path))
    if not candidates:
        raise EngineError(f"the installed onnxruntime package holds no libonnxruntime.so: {INSTALL_HINT}")
    return max(candidates)[1]


def load_onnxruntime(library_path: str | os.PathLike[str] | None = None) -> str:
    """Loads ONNX Runtime into the core once per process and returns its version ("1.32.0")."""
    with _lock:
        if not _core.onnxruntime_loaded() or library_path is not None:
            path = Path(library_path) if library_path is not None else find_onnxruntime_library()
            _core.load_onnxruntime(str(path))
            LOGGER.debug("ONNX Runtime %s loaded from %s", _core.onnxruntime_version(), path)
    return _core.onnxruntime_version()


def forward_onnxruntime_log() -> None:
    """Passes ONNX Runtime's queued messages to the ``sightd.onnxruntime`` logger."""
    for severity, category, message in _core.take_onnxruntime_log():
        ORT_LOGGER.log(
            _ORT_LEVELS.get(severity, logging.WARNING), "%s", message, extra={"ort_category": category}
        )


def _cuda_version() -> str:
    """The CUDA version the installed ONNX Runtime was built for ("13.0"), or "" for a CPU build."""
    for package_dir in _onnxruntime_package_dirs():
        info = package_dir / "capi" / "build_and_package_info.py"
        if not info.is_file():
            continue
        for node in ast.parse(info.read_text(encoding="utf-8")).body:
            if (
                isinstance(node, ast.Assign)
                and any(
                    isinstance(target, ast.Name) and target.id == "cuda_version" for target in node.targets
                )
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                return node.value.value
    return ""


def cuda_library_paths(cuda_version: str) -> list[tuple[str, ...]]:
    """Where NVIDIA's wheels put the libraries ONNX Runtime's CUDA provider needs, relative to
    site-packages, in load order (as ``onnxruntime.preload_dlls`` lists them on Linux)."""
    major = int(cuda_version.split(".", 1)[0])
    cufft = "12" if major >= 13 else "11"
    if major >= 13:
        # CUDA 13 wheels share one nvidia/cu13 folder; cuDNN keeps its own.
        folder = ("nvidia", f"cu{major}", "lib")
        libraries = [
            (*folder, f"libcublasLt.so.{major}"),
            (*folder, f"libcublas.so.{major}"),
            (*folder, f"libnvrtc.so.{major}"),
            (*folder, "libcurand.so.10"),
            (*folder, f"libcufft.so.{cufft}"),
            (*folder, f"libcudart.so.{major}"),
        ]
    else:
        libraries = [
            ("nvidia", "cublas", "lib", f"libcublasLt.so.{major}"),
            ("nvidia", "cublas", "lib", f"libcublas.so.{major}"),
            ("nvidia", "cuda_nvrtc", "lib", f"libnvrtc.so.{major}"),
            ("nvidia", "curand", "lib", "libcurand.so.10"),
            ("nvidia", "cufft", "lib", f"libcufft.so.{cufft}"),
            ("nvidia", "cuda_runtime", "lib", f"libcudart.so.{major}"),
        ]
    return [*libraries, ("nvidia", "cudnn", "lib", "libcudnn.so.9")]


def preload_cuda_libraries() -> list[str]:
    """Loads the CUDA and cuDNN libraries of NVIDIA's wheels (they have no RPATH that ONNX Runtime's CUDA
    provider could follow), falling back to the system's search path. Once per process; returns what was
    loaded (the same list on later calls). A missing library is not an error here: appending the CUDA
    provider then fails and the session records why it runs on CPU."""
    with _lock:
        return _preload_cuda_libraries_once()


@functools.cache
def _preload_cuda_libraries_once() -> list[str]:
    version = _cuda_version()
    if not version:
        return []
    site_dirs = {package_dir.parent for package_dir in _onnxruntime_package_dirs()}
    loaded: list[str] = []
    for relative in cuda_library_paths(version):
        candidates = [str(site.joinpath(*relative)) for site in sorted(site_dirs)]
        for candidate in [*[c for c in candidates if os.path.isfile(c)], relative[-1]]:
            try:
                ctypes.CDLL(candidate)
            except OSError as error:
                LOGGER.debug("cannot preload %s: %s", candidate, error)
                continue
            loaded.append(candidate)
            break
    LOGGER.debug("preloaded CUDA libraries: %s", loaded)
    return loaded


def session_options(
    *,
    intra_op_threads: int = 0,
    inter_op_threads: int = 0,
    optimization: Optimization | str = "all",
    execution_provider: Provider | str = "auto",
    device_id: int = 0,
    allow_spinning: bool = True,
) -> _core.SessionOptions:
    """The core's session options from keyword arguments (0 threads: ONNX Runtime's default)."""
    if optimization not in OPTIMIZATIONS:
        raise InvalidArgumentError(f"must be one of {', '.join(OPTIMIZATIONS)}", field="optimization")
    if execution_provider not in PROVIDERS:
        raise InvalidArgumentError(f"must be one of {', '.join(PROVIDERS)}", field="execution_provider")
    return _core.SessionOptions(
        intra_op_threads=intra_op_threads,
        inter_op_threads=inter_op_threads,
        optimization=OPTIMIZATIONS[optimization],
        execution_provider=execution_provider,
        device_id=device_id,
        allow_spinning=allow_spinning,
    )


def create_session(
    model: str | os.PathLike[str] | bytes | bytearray | memoryview,
    *,
    intra_op_threads: int = 0,
    inter_op_threads: int = 0,
    optimization: Optimization | str = "all",
    execution_provider: Provider | str = "auto",
    device_id: int = 0,
    allow_spinning: bool = True,
) -> _core.Session:
    """Creates an ONNX Runtime session from a model file path or the model's bytes.

    ``execution_provider``: "cpu"; "cuda" (CUDA if it can be used, else CPU with a warning); "auto" (CUDA
    when the installed ONNX Runtime is a GPU build and a GPU answers, else CPU). Raises EngineError when the
    model cannot be loaded, InvalidArgumentError for bad options.
    """
    options = session_options(
        intra_op_threads=intra_op_threads,
        inter_op_threads=inter_op_threads,
        optimization=optimization,
        execution_provider=execution_provider,
        device_id=device_id,
        allow_spinning=allow_spinning,
    )
    load_onnxruntime()
    if execution_provider != "cpu" and CUDA_PROVIDER in _core.available_providers():
        preload_cuda_libraries()
    try:
        if isinstance(model, bytes | bytearray | memoryview):
            session = _core.Session.from_bytes(model, options)
            size = model.nbytes if isinstance(model, memoryview) else len(model)
            described = f"model of {size} bytes"
        else:
            session = _core.Session.from_path(os.fspath(model), options)
            described = os.fspath(model)
    finally:
        forward_onnxruntime_log()
    if session.fallback_reason:
        LOGGER.warning("%s runs on CPU: %s", described, session.fallback_reason)
    return session


def describe_tensors(infos: Sequence[_core.TensorInfo]) -> list[str]:
    """One line per tensor: name, dtype, shape with symbolic dimensions ("x float32 [N, 3, 224, 224]")."""
    lines = []
    for info in infos:
        dims = [
            str(size) if size >= 0 else (name or "?")
            for size, name in zip(info.shape, info.dim_names, strict=True)
        ]
        lines.append(f"{info.name} {info.dtype} [{', '.join(dims)}]")
    return lines
