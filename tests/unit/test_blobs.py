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
