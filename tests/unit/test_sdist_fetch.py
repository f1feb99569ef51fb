"""Fetching an sdist with pip's own client without running its setup.py (sightd.zoo.sdist_metadata)."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

from sightd.zoo import artifacts

NAME, VERSION = "sightd-sdist-probe", "1.0"


def _sdist(folder: Path, marker: Path) -> Path:
    """An sdist whose setup.py leaves a marker file when it runs."""
    root = f"{NAME}-{VERSION}"
    files = {
        f"{root}/PKG-INFO": f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\nSummary: probe\n",
        f"{root}/setup.py": f"open({str(marker)!r}, 'w').write('setup.py ran')\n"
        "from setuptools import setup\nsetup(name='sightd-sdist-probe', version='1.0')\n",
    }
    path = folder / f"{root}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _command(sdist: Path, dest: Path) -> tuple[list[str], dict[str, str]]:
    probe = artifacts.Artifact(
        name="probe",
        registry="pypi",
        package=NAME,
        version=VERSION,
        filename=sdist.name,
        sha256=hashlib.sha256(sdist.read_bytes()).hexdigest(),
        licence="none",
    )
    command, env = artifacts._download_command(probe, dest)
    # The same pip command, pointed at a local folder instead of the index.
    return [*command, "--no-index", "--find-links", str(sdist.parent)], env


def test_pip_download_of_an_sdist_runs_none_of_its_code(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    sdist = _sdist(tmp_path, marker)
    dest = tmp_path / "dest"
    dest.mkdir()
    command, env = _command(sdist, dest)
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert (dest / sdist.name).read_bytes() == sdist.read_bytes()
    assert not marker.exists()


def test_without_the_metadata_backend_pip_runs_setup_py(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    sdist = _sdist(tmp_path, marker)
    dest = tmp_path / "dest"
    dest.mkdir()
    command, env = _command(sdist, dest)
    env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    env.update({"PYTHONPATH": os.environ.get("PYTHONPATH", "")})
    subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert marker.exists()  # the control: what sightd's backend prevents


def test_a_tampered_sdist_is_refused_by_pip_before_anything_reads_it(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    sdist = _sdist(tmp_path, marker)
    dest = tmp_path / "dest"
    dest.mkdir()
    command, env = _command(sdist, dest)
    sdist.write_bytes(sdist.read_bytes() + b"\0")
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "HASHES" in result.stderr.upper()
    assert not (dest / sdist.name).exists()
