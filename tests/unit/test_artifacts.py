from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sightd.zoo import artifacts


def test_darknet_images_are_real_jpegs(darknet_data: Path) -> None:
    dog = (darknet_data / "dog.jpg").read_bytes()
    assert dog[:3] == b"\xff\xd8\xff"
    assert len(dog) == 163759
    assert (darknet_data / "coco.names").read_text().splitlines()[0] == "person"


def test_corrupt_cached_artifact_is_fetched_again(tmp_path: Path) -> None:
    path = artifacts.fetch("darknet", root=tmp_path)
    path.write_bytes(b"corrupted")
    messages: list[str] = []
    again = artifacts.fetch("darknet", root=tmp_path, progress=messages.append)
    assert again == path
    assert hashlib.sha256(path.read_bytes()).hexdigest() == artifacts.ARTIFACTS["darknet"].sha256
    assert any("does not match" in m for m in messages)


def test_wrong_pin_is_refused(tmp_path: Path) -> None:
    real = artifacts.ARTIFACTS["darknet"]
    wrong = artifacts.Artifact(**{**real.__dict__, "sha256": "0" * 64})
    with pytest.raises(artifacts.ArtifactError, match="does not match the pinned"):
        artifacts.fetch(wrong, root=tmp_path)
    assert not (tmp_path / "artifacts" / real.filename).exists()
