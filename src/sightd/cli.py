"""The ``sightd`` command line. Each command lives in its own module of ``sightd.commands``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Modules of sightd.commands; each defines register(subparsers) and sets a `handler` default.
COMMAND_MODULES: tuple[str, ...] = ("gateway", "keys", "predict", "recognize", "serve", "zoo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sightd", description="sightd: self-hosted image recognition")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"sightd.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
