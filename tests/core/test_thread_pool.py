"""sightd::ThreadPool: a C++ check program (cpp/tools/thread_pool_check.cpp) built with ThreadSanitizer, and
the pool's Python binding."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from sightd import _core
from sightd.errors import InvalidArgumentError

ROOT = Path(__file__).resolve().parents[2]


def test_thread_pool_under_thread_sanitizer(tmp_path: Path) -> None:
    compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    assert compiler, "a C++ compiler is needed to build the core anyway"
    binary = tmp_path / "thread_pool_check"
    build = [
        compiler,
        "-std=c++17",
        "-O1",
        "-g",
        "-fsanitize=thread",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pthread",
        f"-I{ROOT / 'cpp' / 'include'}",
        str(ROOT / "cpp" / "src" / "thread_pool.cpp"),
        str(ROOT / "cpp" / "tools" / "thread_pool_check.cpp"),
        "-o",
        str(binary),
    ]
    subprocess.run(build, check=True, capture_output=True, text=True, timeout=300)
    result = subprocess.run(
        [str(binary)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TSAN_OPTIONS": "halt_on_error=1 exitcode=66"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok: ")
    assert "WARNING: ThreadSanitizer" not in result.stderr


def test_thread_pool_binding() -> None:
    assert _core.ThreadPool(0).size == 0
    assert _core.ThreadPool(3).size == 3
    for threads in (-1, 5000):
        with pytest.raises(InvalidArgumentError) as info:
            _core.ThreadPool(threads)
        assert info.value.field == "threads"
