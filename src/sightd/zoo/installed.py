"""A built zoo as the service uses it: its networks and public models, loaded and verified.

``load`` reads what a build wrote (sightd.zoo.layout) and returns read-only records: the ONNX file and
preprocessing of each network, and the recognition spec, post-processing and labels of each public model.
``verify`` checks a built zoo against its manifest and the catalog: every network file has the fingerprint
recorded when it was written and the one pinned in the catalog, and every label and JSON file is exactly
what the catalog gives.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sightd.zoo import artifacts, build, catalog
from sightd.zoo.layout import Layout, default_dest

Json = dict[str, Any]


class ZooNotBuiltError(RuntimeError):
    """The zoo folder lacks files a build writes (run `sightd zoo build`)."""


@dataclass(frozen=True)
class InstalledNetwork:
    name: str
    description: str
    path: Path  # the ONNX file
    sha256: str
    preprocessing: Json


@dataclass(frozen=True)
class InstalledModel:
    name: str  # the public recognition spec and version name
    description: str
    network: str
    spec: Json  # v0.7 recognition spec: name, description, outputs[0].labels
    post_processing: Json


@dataclass(frozen=True)
class Zoo:
    dest: Path
    networks: dict[str, InstalledNetwork]
    models: dict[str, InstalledModel]


def _read_json(path: Path) -> Json:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ZooNotBuiltError(f"{path}: {exc}") from exc
    if not isinstance(value, dict):
        raise ZooNotBuiltError(f"{path}: not a JSON object")
    return value


def load(dest: Path | None = None, *, root: Path | None = None) -> Zoo:
    """The public networks and models of a built zoo (cheap: no hashing; see ``verify``)."""
    layout = Layout(dest or default_dest(root))
    manifest = build.read_manifest(layout)
    if not manifest:
        raise ZooNotBuiltError(f"no zoo manifest in {layout.dest} (run `sightd zoo build`)")
    networks: dict[str, InstalledNetwork] = {}
    for network in catalog.NETWORKS.values():
        record = manifest.get("networks", {}).get(network.name)
        path = layout.network(network.name)
        if not record or not path.is_file():
            raise ZooNotBuiltError(f"network {network.name} is not built in {layout.dest}")
        networks[network.name] = InstalledNetwork(
            network.name, network.description, path, str(record["sha256"]), network.preprocessing
        )
    models: dict[str, InstalledModel] = {}
    for model in catalog.MODELS.values():
        folder = layout.public(model.name)
        models[model.name] = InstalledModel(
            model.name,
            model.description,
            model.network,
            _read_json(folder / "spec.json"),
            _read_json(folder / "post_processing.json"),
        )
    return Zoo(layout.dest, networks, models)


def verify(dest: Path | None = None, *, root: Path | None = None) -> list[str]:
    """What is wrong with a built zoo; an empty list when everything checks out."""
    layout = Layout(dest or default_dest(root))
    manifest = build.read_manifest(layout)
    if not manifest:
        return [f"no zoo manifest in {layout.dest}"]
    problems: list[str] = []
    for network in catalog.NETWORKS.values():
        record = manifest.get("networks", {}).get(network.name, {})
        path = layout.network(network.name)
        if not path.is_file():
            problems.append(f"{network.name}: {path} is missing")
            continue
        actual = artifacts.sha256_of(path)
        if actual != record.get("sha256"):
            problems.append(
                f"{network.name}: sha256 {actual[:16]} is not the {str(record.get('sha256'))[:16]} "
                "recorded when it was built (corrupt or modified)"
            )
        if network.fingerprint and actual != network.fingerprint:
            problems.append(
                f"{network.name}: sha256 {actual[:16]} is not the pinned fingerprint "
                f"{network.fingerprint[:16]} (not reproduced by this build)"
            )
    for name, expected in build.public_files(root).items():
        path = layout.dest / name
        try:
            if path.read_bytes() != expected:
                problems.append(f"{name} differs from the catalog")
        except OSError:
            problems.append(f"{name} is missing")
    return problems
