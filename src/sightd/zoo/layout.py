"""Where a built zoo lives and how its files are written.

```
<dest>/                       default: <cache>/models  (sightd.zoo.artifacts.cache_dir())
  manifest.json               what was built from what: per network its file, sha256, size and sources
  networks/<network>.onnx     the converted models
  labels/<list>.tsv           label files: imagenet-1k, coco-80, face, nsfw
  public/<model>/             one folder per public model (recognition spec + version)
    spec.json                 the v0.7 recognition spec (labels, exclusive, roi)
    preprocessing.json        the v0.7 preprocessing of its network
    post_processing.json      the v0.7 post-processing of its version
```
Every file is written under a temporary name in its folder, then renamed: a reader (or a second build
running at the same time) never sees a partial file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sightd.zoo import artifacts

MANIFEST = "manifest.json"
FORMAT = 1


def default_dest(root: Path | None = None) -> Path:
    return (root or artifacts.cache_dir()) / "models"


@dataclass(frozen=True)
class Layout:
    dest: Path

    @property
    def manifest(self) -> Path:
        return self.dest / MANIFEST

    def network(self, name: str) -> Path:
        return self.dest / "networks" / f"{name}.onnx"

    def labels(self, label_list: str) -> Path:
        return self.dest / "labels" / f"{label_list}.tsv"

    def public(self, model: str) -> Path:
        return self.dest / "public" / model


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json(value: Any, indent: str) -> str:
    # Lists of numbers and short objects stay on one line (anchors, means, labels): easy to read.
    inner = indent + "  "
    flat = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    if isinstance(value, dict) and value:
        if len(flat) <= 72 and not any(isinstance(v, dict | list) for v in value.values()):
            return flat  # a label {"id", "name"}: one line
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {_json(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list) and value and any(isinstance(v, dict | list) for v in value):
        return "[\n" + ",\n".join(inner + _json(v, inner) for v in value) + "\n" + indent + "]"
    return flat


def json_bytes(value: Any) -> bytes:
    """The zoo's JSON files: indented, short lists inline, keys in the order written, a final newline."""
    return (_json(value, "") + "\n").encode("utf-8")


def write_if_changed(path: Path, data: bytes) -> bool:
    """Writes ``data`` unless the file already holds exactly it; True when it wrote."""
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass
    write_atomically(path, data)
    return True
