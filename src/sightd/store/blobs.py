"""Content-addressed storage of model files: ``blobs/ab/cdef...`` named by the SHA-256 of the content.

A file is streamed to a temporary file in the same folder tree (so the final rename is atomic), hashed
on the way and refused past a size limit; a blob that exists already is kept and the new copy dropped
(deduplication). Readers therefore never see a partial blob. Which blobs are in use is the database's
business (``network_files``); :meth:`BlobStore.delete` is called once no row refers to a blob.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

_SHA256 = re.compile(r"[0-9a-f]{64}")


class BlobTooLargeError(Exception):
    """The content exceeds the writer's size limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than the limit of {limit} bytes")
        self.limit = limit


@dataclass(frozen=True)
class BlobInfo:
    """A stored blob."""

    sha256: str
    size: int


class BlobWriter:
    """Streams one blob to disk. Use as a context manager: leaving it without :meth:`commit` (or on an
    exception) removes the temporary file."""

    def __init__(self, store: BlobStore, limit: int) -> None:
        self._store = store
        self._limit = limit
        self._hash = hashlib.sha256()
        self._size = 0
        descriptor, name = tempfile.mkstemp(prefix="upload-", dir=store.temp_dir)
        self._file = os.fdopen(descriptor, "wb")
        self._temp = Path(name)
        self._done = False
        self._sealed = False

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes) -> None:
        """Appends bytes; raises BlobTooLargeError (and discards the file) past the limit."""
        if self._done or self._sealed:
            raise RuntimeError("blob writer already finished")
        if self._size + len(data) > self._limit:
            self.abort()
            raise BlobTooLargeError(self._limit)
        self._file.write(data)
        self._hash.update(data)
        self._size += len(data)

    def seal(self) -> Path:
        """Ends the content (durably) and returns the temporary file, to be read before :meth:`commit` or
        :meth:`abort` (a model checked before it is kept)."""
        if self._done:
            raise RuntimeError("blob writer already finished")
        if not self._sealed:
            self._sealed = True
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        return self._temp

    def commit(self) -> BlobInfo:
        """Makes the blob durable under its hash and returns it (the existing one if it was known)."""
        self.seal()
        self._done = True
        info = BlobInfo(self._hash.hexdigest(), self._size)
        target = self._store.path(info.sha256)
        if target.exists():
            self._temp.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(self._temp, 0o444)
            os.replace(self._temp, target)
        return info

    def abort(self) -> None:
        if not self._done:
            self._done = True
            self._file.close()
            self._temp.unlink(missing_ok=True)

    @property
    def sha256(self) -> str:
        """The hash of what was written so far."""
        return self._hash.hexdigest()

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.abort()


class BlobStore:
    """The blob folder. File operations are blocking: call them from a worker thread in async code."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.temp_dir = root / "tmp"
        self.temp_dir.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"not a SHA-256 in lowercase hexadecimal: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:]

    def writer(self, limit: int) -> BlobWriter:
        return BlobWriter(self, limit)

    def put(self, data: bytes, limit: int | None = None) -> BlobInfo:
        """Stores bytes already in memory."""
        with self.writer(len(data) if limit is None else limit) as writer:
            writer.write(data)
            return writer.commit()

    def adopt(self, source: Path, sha256: str) -> BlobInfo:
        """Makes an existing file whose hash is known (a built zoo network) a blob: a hard link when the
        folders share a file system, else a copy. The file must not change afterwards."""
        target = self.path(sha256)
        size = source.stat().st_size
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            temp = self.temp_dir / f"upload-{secrets.token_hex(8)}"
            try:
                os.link(source, temp)
            except OSError:
                shutil.copyfile(source, temp)
                os.chmod(temp, 0o444)
            os.replace(temp, target)
        return BlobInfo(sha256, size)

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    def remove_stale_uploads(self) -> int:
        """Removes temporary files left by a crash during an upload (call at start-up)."""
        removed = 0
        for stale in self.temp_dir.glob("upload-*"):
            stale.unlink(missing_ok=True)
            removed += 1
        return removed
