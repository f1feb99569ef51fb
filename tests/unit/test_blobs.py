"""The content-addressed blob folder: hashing, size limit, deduplication, no partial files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from sightd.store.blobs import BlobStore, BlobTooLargeError


def test_streamed_blob_is_stored_under_its_sha256(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    content = os.urandom(3 * 1024 * 1024 + 17)
    with store.writer(limit=len(content)) as writer:
        for start in range(0, len(content), 1 << 20):
            writer.write(content[start : start + (1 << 20)])
        info = writer.commit()
    digest = hashlib.sha256(content).hexdigest()
    assert (info.sha256, info.size) == (digest, len(content))
    assert (tmp_path / "blobs" / digest[:2] / digest[2:]).read_bytes() == content
    assert list(store.temp_dir.iterdir()) == []


def test_same_content_twice_is_stored_once(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    first = store.put(b"model bytes")
    second = store.put(b"model bytes")
    assert first == second
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files == [store.path(first.sha256)]


def test_content_over_the_limit_leaves_nothing_behind(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with store.writer(limit=10) as writer:
        writer.write(b"12345")
        with pytest.raises(BlobTooLargeError):
            writer.write(b"678901")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_abandoned_upload_is_removed(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with store.writer(limit=100) as writer:
        writer.write(b"partial")
    assert list(store.temp_dir.iterdir()) == []
    # A crash leaves the temporary file: the next start-up sweeps it.
    crashed = store.writer(limit=100)
    crashed.write(b"partial")
    assert store.remove_stale_uploads() == 1
    assert list(store.temp_dir.iterdir()) == []
    crashed.abort()


def test_only_hex_digests_name_blobs(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with pytest.raises(ValueError, match="SHA-256"):
        store.path("../../etc/passwd")


def test_sealed_content_is_readable_before_it_is_kept_or_dropped(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with store.writer(limit=100) as writer:
        writer.write(b"checked first")
        assert writer.seal().read_bytes() == b"checked first"
        with pytest.raises(RuntimeError):
            writer.write(b"more")
        info = writer.commit()
    assert store.read(info.sha256) == b"checked first"
    with store.writer(limit=100) as refused:
        refused.write(b"refused")
        refused.seal()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [store.path(info.sha256)]


def test_an_existing_file_is_adopted_by_its_known_hash(tmp_path: Path) -> None:
    source = tmp_path / "zoo" / "model.onnx"
    source.parent.mkdir()
    source.write_bytes(b"zoo network")
    store = BlobStore(tmp_path / "blobs")
    digest = hashlib.sha256(b"zoo network").hexdigest()
    info = store.adopt(source, digest)
    assert (info.sha256, info.size) == (digest, len(b"zoo network"))
    assert store.read(digest) == b"zoo network"
    assert store.adopt(source, digest) == info
    assert list(store.temp_dir.iterdir()) == []
