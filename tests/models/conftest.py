"""The public model zoo, built once per test session into the user cache (idempotent, shared across runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sightd.zoo import build, installed


@pytest.fixture(scope="session")
def zoo() -> installed.Zoo:
    # Under pytest-xdist every worker runs this at once: builds are safe to run concurrently.
    build.build()
    return installed.load()


@pytest.fixture(scope="session")
def images(darknet_data: Path, skimage_data: Path) -> dict[str, Path]:
    return {"darknet": darknet_data, "skimage": skimage_data}
