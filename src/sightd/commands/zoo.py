"""``sightd zoo list | build | verify``: the public model zoo from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sightd.zoo import artifacts, build, catalog, installed
from sightd.zoo.layout import Layout, default_dest


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("zoo", help="public pre-trained models: list, build, verify")
    commands = parser.add_subparsers(dest="zoo_command", required=True, metavar="ZOO_COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--cache-dir",
            type=Path,
            default=None,
            help="cache holding the source artifacts (default: $SIGHTD_CACHE_DIR or ~/.cache/sightd)",
        )
        p.add_argument("--dest", type=Path, default=None, help="zoo folder (default: <cache-dir>/models)")

    listing = commands.add_parser("list", help="list the public models")
    common(listing)
    listing.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    listing.set_defaults(handler=_list)

    building = commands.add_parser("build", help="fetch the sources and convert every public network")
    common(building)
    building.add_argument("--force", action="store_true", help="convert again even what is up to date")
    building.add_argument(
        "--only",
        nargs="+",
        metavar="NETWORK",
        choices=sorted(catalog.NETWORKS),
        help="build only these networks",
    )
    building.add_argument("--quiet", action="store_true", help="print only the summary")
    building.set_defaults(handler=_build)

    verifying = commands.add_parser("verify", help="check the built zoo against its fingerprints")
    common(verifying)
    verifying.set_defaults(handler=_verify)


def _kind(model: catalog.PublicModel) -> str:
    if model.roi == "BBOX":
        return "detection"
    return "classification" if model.exclusive else "tagging"


def _list(args: argparse.Namespace) -> int:
    layout = Layout(args.dest or default_dest(args.cache_dir))
    built = build.read_manifest(layout).get("networks", {})
    rows = []
    for model in catalog.MODELS.values():
        network = catalog.NETWORKS[model.network]
        count = len(model.label_names) if model.label_names else None
        rows.append(
            {
                "name": model.name,
                "kind": _kind(model),
                "network": model.network,
                "labels": f"{model.label_list}" + (f" ({count} of them)" if count else ""),
                "built": model.network in built and layout.network(model.network).is_file(),
                "sources": sorted({artifacts.ARTIFACTS[s.artifact].package for s in network.sources}),
                "description": model.description,
            }
        )
    if args.json:
        print(json.dumps({"dest": str(layout.dest), "models": rows}, indent=2))
        return 0
    print(f"{'NAME':<25} {'KIND':<15} {'NETWORK':<25} {'BUILT':<6} LABELS")
    for row in rows:
        built_mark = "yes" if row["built"] else "no"
        print(f"{row['name']:<25} {row['kind']:<15} {row['network']:<25} {built_mark:<6} {row['labels']}")
    print(f"\nzoo folder: {layout.dest}" + ("" if built else "  (not built: run `sightd zoo build`)"))
    return 0


def _disk_use(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def _build(args: argparse.Namespace) -> int:
    progress = None if args.quiet else (lambda message: print(message, flush=True))
    try:
        report = build.build(
            args.dest, root=args.cache_dir, progress=progress, force=args.force, names=args.only
        )
    except (artifacts.ArtifactError, OSError, ValueError) as exc:
        print(f"sightd zoo build: {exc}", file=sys.stderr)
        return 1
    converted = [n for n in report.networks if n.built]
    cache = args.cache_dir or artifacts.cache_dir()
    print(
        f"zoo built in {report.seconds:.1f} s: {len(converted)} of {len(report.networks)} networks "
        "converted, "
        f"{len(report.fetched)} artifacts downloaded ({report.downloaded_bytes / 1e6:.1f} MB)\n"
        f"disk use: {_disk_use(report.dest) / 1e6:.1f} MB models in {report.dest}, "
        f"{_disk_use(cache / 'artifacts') / 1e6:.1f} MB source artifacts in {cache / 'artifacts'}"
    )
    for mismatch in report.mismatches:
        print(
            f"warning: {mismatch.name} sha256 {mismatch.sha256} differs from the pinned {mismatch.pinned}",
            file=sys.stderr,
        )
    return 0


def _verify(args: argparse.Namespace) -> int:
    problems = installed.verify(args.dest, root=args.cache_dir)
    for problem in problems:
        print(problem)
    if problems:
        print(f"sightd zoo verify: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    layout = Layout(args.dest or default_dest(args.cache_dir))
    print(
        f"zoo in {layout.dest}: {len(catalog.NETWORKS)} networks and {len(catalog.MODELS)} "
        "public models verified"
    )
    return 0
