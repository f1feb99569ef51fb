"""The public model zoo, built once per test session into the user cache (idempotent, shared across runs)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sightd.zoo import build, installed

# The post-processing tests' NumPy reference and comparison helpers (tests/core) also serve the tests here
# that decode real model outputs, also when tests/models runs alone.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))


@pytest.fixture(scope="session")
def zoo() -> installed.Zoo:
    # Under pytest-xdist every worker runs this at once: builds are safe to run concurrently.
    build.build()
    return installed.load()


@pytest.fixture(scope="session")
def images(darknet_data: Path, skimage_data: Path) -> dict[str, Path]:
    return {"darknet": darknet_data, "skimage": skimage_data}
