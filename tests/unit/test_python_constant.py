"""Reading a bytes literal out of Python source without running it."""

from __future__ import annotations

from pathlib import Path

import pytest

from sightd.zoo.readers.python_constant import ConstantError, read_bytes_constant


def test_reads_the_literal() -> None:
    source = "import os\nOTHER = 1\nWEIGHTS = b'\\x08\\x06abc'\n"
    assert read_bytes_constant(source, "WEIGHTS") == b"\x08\x06abc"


def test_never_runs_the_file(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    source = f"open({str(marker)!r}, 'w').write('x')\nWEIGHTS = open({str(marker)!r}, 'rb').read()\n"
    with pytest.raises(ConstantError, match="not a literal"):
        read_bytes_constant(source, "WEIGHTS")
    assert not marker.exists()


def test_missing_or_wrong_type() -> None:
    with pytest.raises(ConstantError, match="no top-level assignment"):
        read_bytes_constant("def f():\n    WEIGHTS = b''\n", "WEIGHTS")
    with pytest.raises(ConstantError, match="not bytes"):
        read_bytes_constant("WEIGHTS = 'text'\n", "WEIGHTS")
    with pytest.raises(ConstantError, match="not Python"):
        read_bytes_constant("WEIGHTS = b'\n", "WEIGHTS")
