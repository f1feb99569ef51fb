"""A metadata-only PEP 517 build backend, so that ``pip download`` of an sdist runs none of its code.

pip cannot download a source distribution without first asking the project's build backend for its
metadata (to check the name and version it resolved). For a project with only a ``setup.py`` (no
``pyproject.toml``), pip uses ``setuptools.build_meta:__legacy__``, which runs ``setup.py``: arbitrary code
from the package, and code that may not even run here. The zoo fetches its pinned sdists with
``pip download --no-deps --no-build-isolation --use-pep517`` and this file copied, for that one command, to
``<tmp>/setuptools/build_meta.py`` at the front of ``PYTHONPATH``: the metadata then comes from the sdist's
own ``PKG-INFO`` and nothing of the package is executed. pip has already checked the sdist against its
pinned ``--hash`` when it calls the backend.

Standard library only: pip runs this in a subprocess of the same interpreter.
"""

from __future__ import annotations

import email.parser
import re
import sys
from pathlib import Path
from typing import Any


def _metadata_text() -> str:
    pkg_info = Path("PKG-INFO")  # pip calls the hooks from the unpacked sdist's root
    if not pkg_info.is_file():
        raise RuntimeError("this sdist has no PKG-INFO: its metadata cannot be read without running it")
    return pkg_info.read_text(encoding="utf-8")


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    return []


def prepare_metadata_for_build_wheel(
    metadata_directory: str, config_settings: dict[str, Any] | None = None
) -> str:
    text = _metadata_text()
    headers = email.parser.HeaderParser().parsestr(text)
    name, version = headers.get("Name"), headers.get("Version")
    if not name or not version:
        raise RuntimeError("PKG-INFO lacks Name or Version")
    # The dist-info folder name, normalised as the wheel spec asks.
    folder = f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}.dist-info"
    target = Path(metadata_directory) / folder
    target.mkdir(parents=True, exist_ok=True)
    (target / "METADATA").write_text(text, encoding="utf-8")
    return folder


def build_wheel(
    wheel_directory: str, config_settings: dict[str, Any] | None = None, metadata_directory: str | None = None
) -> str:
    raise RuntimeError("sightd's metadata-only backend does not build wheels (it serves `pip download`)")


# pip names the fallback backend `setuptools.build_meta:__legacy__`; this module serves both names.
__legacy__ = sys.modules[__name__]
