"""The label lists of the public models, produced from Debian's darknet data files.

- ``imagenet-1k``: the first 1000 lines of ``imagenet.labels.list`` (WordNet ids) paired with
  ``imagenet.shortnames.list`` (names), sorted by WordNet id: the class order of PyTorch, TensorFlow and Caffe
  ImageNet models. Label id = class index (0 = tench ... 999 = toilet tissue). Two names appear twice (crane:
  the bird and the machine; maillot): the ids and WordNet ids tell them apart.
- ``coco-80``: ``coco.names`` in file order, darknet's spellings (motorbike, aeroplane, sofa, pottedplant,
  diningtable, tvmonitor). Label id = class index (0 = person ... 79 = toothbrush).
- ``face`` and ``nsfw``: fixed lists of the models' own classes.

Label ids never change: a spec that lists a subset of a list keeps the ids of the full list.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sightd.zoo import artifacts

LABELS_ARTIFACT = "darknet"
DARKNET_DATA = "usr/share/darknet/data"
IMAGENET_CLASSES = 1000


@dataclass(frozen=True)
class Label:
    id: int
    name: str
    key: str = ""  # a stable external key where the list has one (the WordNet id for ImageNet)


def _read(root: Path | None, name: str) -> list[str]:
    archive = artifacts.fetch(LABELS_ARTIFACT, root=root)
    text = artifacts.read_member(archive, f"{DARKNET_DATA}/{name}").decode("utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def imagenet(root: Path | None = None) -> list[Label]:
    wnids = _read(root, "imagenet.labels.list")[:IMAGENET_CLASSES]
    names = _read(root, "imagenet.shortnames.list")[:IMAGENET_CLASSES]
    if len(set(wnids)) != IMAGENET_CLASSES or len(names) != IMAGENET_CLASSES:
        raise ValueError("darknet's ImageNet lists do not start with the 1000 ImageNet-1k classes")
    pairs = sorted(zip(wnids, names, strict=True))
    return [Label(i, name, wnid) for i, (wnid, name) in enumerate(pairs)]


def coco(root: Path | None = None) -> list[Label]:
    names = _read(root, "coco.names")
    if len(names) != 80:
        raise ValueError(f"darknet's coco.names has {len(names)} names, not 80")
    return [Label(i, name) for i, name in enumerate(names)]


def fixed(names: tuple[str, ...]) -> list[Label]:
    return [Label(i, name) for i, name in enumerate(names)]


FACE = ("face",)
NSFW = ("safe", "unsafe")


def label_list(name: str, root: Path | None = None) -> list[Label]:
    """One of the zoo's label lists by name: imagenet-1k, coco-80, face, nsfw."""
    if name == "imagenet-1k":
        return imagenet(root)
    if name == "coco-80":
        return coco(root)
    if name == "face":
        return fixed(FACE)
    if name == "nsfw":
        return fixed(NSFW)
    raise KeyError(f"unknown label list {name}")


def to_tsv(labels: list[Label]) -> str:
    """A label file: one ``id<TAB>name`` line per label (``id<TAB>key<TAB>name`` when labels have keys)."""
    rows = [f"{x.id}\t{x.key}\t{x.name}" if x.key else f"{x.id}\t{x.name}" for x in labels]
    return "\n".join(rows) + "\n"
