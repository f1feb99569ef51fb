"""The public model zoo for the runtime tests, built once per session into the cache (idempotent; safe when
pytest-xdist workers build at once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sightd.zoo import build, installed


@pytest.fixture(scope="session")
def zoo() -> installed.Zoo:
    build.build()
    return installed.load()


@pytest.fixture(scope="session")
def photos(darknet_data: Path, skimage_data: Path) -> dict[str, bytes]:
    paths = [darknet_data / n for n in ("dog.jpg", "person.jpg", "eagle.jpg", "giraffe.jpg", "horses.jpg")]
    paths += [skimage_data / n for n in ("chelsea.png", "astronaut.png", "camera.png")]
    return {path.name: path.read_bytes() for path in paths}
