"""Networks: creation from an upload (files streamed into the blob folder and checked before they are
kept), reading, changes and deletion, for the caller's tenant.

A network is created in one go, v0.7's way: the model loads and fits its preprocessing (the runtime checks
it: ``NetworkValidator``) or nothing is kept and every problem is answered at once. Creation also answers
v0.7's deployment task, done at once since the check loaded the model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sightd.app.errors import BadRequestError, FieldViolation, ServiceError, quoted
from sightd.preprocessing import PreprocessingError, parse_preprocessing
from sightd.store import networks as network_store
from sightd.store import tasks as task_store
from sightd.store.blobs import BlobStore, BlobTooLargeError, BlobWriter
from sightd.store.database import Database
from sightd.store.networks import NetworkRecord

# Frameworks whose models sightd runs; the others v0.7 names need a conversion to ONNX first.
FRAMEWORKS = ("onnx",)
CONVERTIBLE = {
    "tensorflow": "convert it to ONNX with tf2onnx (python -m tf2onnx.convert --saved-model DIR --output "
    "model.onnx) and upload it with framework 'onnx'",
    "caffe": "convert it to ONNX (for instance with caffe2onnx) and upload it with framework 'onnx'",
}
MAX_FILES = 16
# Mean files are read whole to be checked: a per-pixel mean of a 4096x4096 RGB float input is 192 MiB.
MAX_MEAN_FILE_BYTES = 256 << 20


@dataclass(frozen=True)
class NetworkCheck:
    """What the runtime checks before a network is kept: the model (a sealed upload, not yet a blob), its
    preprocessing document and its mean files' bytes, by field name."""

    model_path: Path
    preprocessing: Mapping[str, Any]
    mean_files: Mapping[str, bytes]


# Loads the model and checks it against the preprocessing; answers (field, message) violations with fields
# of the network document ("preprocessing.inputs[0].image.target_size", "network" for the model file).
NetworkValidator = Callable[[NetworkCheck], Awaitable[Sequence[tuple[str, str]]]]


@dataclass(frozen=True)
class NetworkFields:
    """The fields of a network being created (v0.7 JSON values)."""

    name: str
    framework: str
    preprocessing: Mapping[str, Any] | None
    description: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    postprocessings: Sequence[Mapping[str, Any]] = ()


class Upload:
    """The files of a network, as their chunks stream in: each file's chunks are consecutive. Files stay
    temporary until :meth:`commit`; :meth:`abort` (or leaving without commit) drops them."""

    def __init__(self, blobs: BlobStore, limit: int) -> None:
        self._blobs = blobs
        self._limit = limit
        self._writers: dict[str, BlobWriter] = {}
        self._current = ""

    async def add(self, field_name: str, data: bytes) -> None:
        if not field_name:
            raise BadRequestError.of("chunk.field_name", "is required")
        writer = self._writers.get(field_name)
        if field_name != self._current:
            if writer is not None:
                raise BadRequestError.of(
                    field_name, "a file's chunks must be consecutive (this file was sent before)"
                )
            if len(self._writers) >= MAX_FILES:
                raise BadRequestError.of(field_name, f"a network has at most {MAX_FILES} files")
            writer = await asyncio.to_thread(self._blobs.writer, self._limit)
            self._writers[field_name] = writer
            self._current = field_name
        assert writer is not None
        try:
            await asyncio.to_thread(writer.write, data)
        except BlobTooLargeError:
            raise BadRequestError.of(
                field_name,
                f"the file is larger than the limit of {self._limit} bytes",
                reason="FILE_TOO_LARGE",
            ) from None

    @property
    def field_names(self) -> list[str]:
        return list(self._writers)

    async def sealed(self) -> dict[str, Path]:
        """Every file, complete, at its temporary path."""
        return {name: await asyncio.to_thread(writer.seal) for name, writer in self._writers.items()}

    async def commit(self) -> dict[str, Any]:
        """Keeps every file as a blob; returns their BlobInfo by field name."""
        return {name: await asyncio.to_thread(writer.commit) for name, writer in self._writers.items()}

    def abort(self) -> None:
        for writer in self._writers.values():
            writer.abort()


@dataclass(frozen=True)
class NetworkFiles:
    """A stored network's model and mean files, as the runtime takes them."""

    model_path: Path
    model_sha256: str
    mean_files: dict[str, bytes]


async def network_files(record: NetworkRecord, blobs: BlobStore) -> NetworkFiles:
    """The blob of a stored network's model and the bytes of its mean files."""
    mean_names = _mean_file_names(record.preprocessing)
    by_name = {f.field_name: f.sha256 for f in record.files}
    models = [name for name in by_name if name not in mean_names]
    if len(models) != 1:
        raise ServiceError(f"network {record.id} has {len(models)} model files")
    mean_files = {
        name: await asyncio.to_thread(blobs.read, by_name[name]) for name in mean_names if name in by_name
    }
    return NetworkFiles(blobs.path(by_name[models[0]]), by_name[models[0]], mean_files)


def _mean_file_names(preprocessing: Mapping[str, Any]) -> set[str]:
    names: set[str] = set()
    inputs = preprocessing.get("inputs")
    for entry in inputs if isinstance(inputs, list) else []:
        image = entry.get("image") if isinstance(entry, Mapping) else None
        if isinstance(image, Mapping) and isinstance(image.get("mean_file"), str) and image["mean_file"]:
            names.add(image["mean_file"])
    return names


def _prefixed(prefix: str, violations: Sequence[tuple[str, str]]) -> list[FieldViolation]:
    return [FieldViolation(f"{prefix}.{f}" if f else prefix, message) for f, message in violations]


class Networks:
    """The network use cases of one service instance."""

    def __init__(
        self,
        database: Database,
        blobs: BlobStore,
        validate: NetworkValidator,
        *,
        max_upload_bytes: int,
        task_ttl: float,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        """``on_change`` is called after each change (what remembers networks forgets them)."""
        self.database = database
        self.blobs = blobs
        self.validate = validate
        self.max_upload_bytes = max_upload_bytes
        self.task_ttl = task_ttl
        self.on_change = on_change

    def upload(self) -> Upload:
        return Upload(self.blobs, self.max_upload_bytes)

    async def create(
        self, tenant_id: int, fields: NetworkFields, upload: Upload
    ) -> tuple[NetworkRecord, int]:
        """Checks and stores a network; returns it with its (done) deployment task id. Consumes the
        upload: its files are kept on success and dropped otherwise."""
        try:
            record, task_id = await self._create(tenant_id, fields, upload)
        finally:
            upload.abort()  # nothing left once committed
        return record, task_id

    async def _create(
        self, tenant_id: int, fields: NetworkFields, upload: Upload
    ) -> tuple[NetworkRecord, int]:
        violations: list[FieldViolation] = []
        if not fields.name:
            violations.append(FieldViolation("name", "is required"))
        framework = fields.framework.strip().lower()
        if framework in CONVERTIBLE:
            violations.append(
                FieldViolation(
                    "framework", f"sightd runs ONNX models; for a {framework} model, {CONVERTIBLE[framework]}"
                )
            )
        elif framework not in FRAMEWORKS:
            violations.append(FieldViolation("framework", f"must be 'onnx', not {quoted(fields.framework)}"))
        preprocessing = fields.preprocessing
        if preprocessing is None:
            violations.append(FieldViolation("preprocessing", "is required"))
            preprocessing = {}
        mean_names = _mean_file_names(preprocessing)
        models = [name for name in upload.field_names if name not in mean_names]
        if len(models) != 1:
            described = ", ".join(quoted(name) for name in models) or "none"
            violations.append(
                FieldViolation(
                    "files",
                    f"expected exactly one model file (the one file no mean_file names); found {described}",
                )
            )
        paths = await upload.sealed()
        for name in sorted(mean_names & set(paths)):
            if paths[name].stat().st_size > MAX_MEAN_FILE_BYTES:
                violations.append(
                    FieldViolation(name, f"a mean file has at most {MAX_MEAN_FILE_BYTES} bytes")
                )
        if violations:
            raise BadRequestError.of_violations(violations)
        mean_files = {
            name: await asyncio.to_thread(paths[name].read_bytes) for name in mean_names if name in paths
        }
        if fields.preprocessing is not None:
            try:
                parse_preprocessing(preprocessing, mean_files)
            except PreprocessingError as error:
                violations += _prefixed("preprocessing", error.violations)
        if violations:
            raise BadRequestError.of_violations(violations)
        found = await self.validate(NetworkCheck(paths[models[0]], preprocessing, mean_files))
        if found:
            raise BadRequestError.of_violations([FieldViolation(f, m) for f, m in found])
        files = await upload.commit()
        async with self.database.write() as connection:
            record = await network_store.create_network(
                connection,
                tenant_id,
                name=fields.name,
                framework=framework,
                preprocessing=preprocessing,
                description=fields.description,
                metadata=fields.metadata,
                postprocessings=fields.postprocessings,
                files=files,
            )
            task = await connection.run_sync(task_store.create_task, tenant_id, "network_creation")
            await connection.run_sync(task_store.complete_task, task.id, None, ttl=self.task_ttl)
        return record, task.id

    async def get(self, tenant_id: int, network_id: str) -> NetworkRecord:
        async with self.database.read() as connection:
            return await network_store.get_network(connection, tenant_id, network_id)

    async def list(
        self, tenant_id: int, *, public: bool, offset: int, limit: int
    ) -> tuple[int, list[NetworkRecord]]:
        async with self.database.read() as connection:
            return await network_store.list_networks(
                connection, tenant_id, public=public, offset=offset, limit=limit
            )

    async def update(self, tenant_id: int, network_id: str, changes: Mapping[str, Any]) -> NetworkRecord:
        async with self.database.write() as connection:
            record = await network_store.update_network(connection, tenant_id, network_id, changes)
        self.on_change()
        return record

    async def delete(self, tenant_id: int, network_id: str) -> None:
        async with self.database.write() as connection:
            unused = await network_store.delete_network(connection, tenant_id, network_id)
        self.on_change()
        for sha256 in unused:
            await asyncio.to_thread(self.blobs.delete, sha256)
