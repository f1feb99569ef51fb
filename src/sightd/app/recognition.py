"""Recognition specs and versions, for the caller's tenant.

A spec's outputs are checked when it is created (labels, roi, exclusive); a version's post-processings
against its spec's outputs (one per output, one threshold per label...) and then, by the runtime, against
its network (every tensor named exists, with a shape that fits): any problem answers INVALID_ARGUMENT with
one field violation each, and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sightd.app.errors import BadRequestError, FieldViolation
from sightd.app.networks import NetworkFiles, network_files
from sightd.postprocessing import PostProcessingError, VersionPostProcessor, parse_spec_outputs
from sightd.store import networks as network_store
from sightd.store import recognition as recognition_store
from sightd.store.blobs import BlobStore
from sightd.store.database import Database
from sightd.store.networks import NetworkRecord
from sightd.store.recognition import SpecRecord, VersionRecord


@dataclass(frozen=True)
class VersionCheck:
    """What the runtime checks before a version is kept: its network and documents."""

    network: NetworkRecord
    files: NetworkFiles
    spec_outputs: Sequence[Mapping[str, Any]]
    post_processings: Sequence[Mapping[str, Any]]


# Builds the version's post-processing on its network; answers (field, message) violations with fields of
# the version document ("post_processings[0].detection.yolo_output.output_tensor").
VersionValidator = Callable[[VersionCheck], Awaitable[Sequence[tuple[str, str]]]]


def _violations(error: PostProcessingError) -> list[FieldViolation]:
    return [FieldViolation(field, message) for field, message in error.violations]


class Recognition:
    """The spec and version use cases of one service instance."""

    def __init__(
        self,
        database: Database,
        blobs: BlobStore,
        validate: VersionValidator,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        """``on_change`` is called after each change of a spec or version (what remembers them forgets)."""
        self.database = database
        self.blobs = blobs
        self.validate = validate
        self.on_change = on_change

    # --- specs --------------------------------------------------------------------------------------

    async def create_spec(
        self,
        tenant_id: int,
        *,
        name: str,
        outputs: Sequence[Mapping[str, Any]],
        description: str = "",
        metadata: Mapping[str, Any] | None = None,
        current_version_id: int | None = None,
    ) -> SpecRecord:
        violations: list[FieldViolation] = []
        if not name:
            violations.append(FieldViolation("name", "is required"))
        if current_version_id is not None:
            violations.append(FieldViolation("current_version_id", "a new spec has no version yet"))
        try:
            parse_spec_outputs(list(outputs))
        except PostProcessingError as error:
            violations += _violations(error)
        if violations:
            raise BadRequestError.of_violations(violations)
        async with self.database.write() as connection:
            return await recognition_store.create_spec(
                connection, tenant_id, name=name, outputs=outputs, description=description, metadata=metadata
            )

    async def get_spec(self, tenant_id: int, spec_id: str) -> SpecRecord:
        async with self.database.read() as connection:
            return await recognition_store.get_spec(connection, tenant_id, spec_id)

    async def list_specs(
        self, tenant_id: int, *, public: bool, offset: int, limit: int
    ) -> tuple[int, list[SpecRecord]]:
        async with self.database.read() as connection:
            return await recognition_store.list_specs(
                connection, tenant_id, public=public, offset=offset, limit=limit
            )

    async def update_spec(self, tenant_id: int, spec_id: str, changes: Mapping[str, Any]) -> SpecRecord:
        async with self.database.write() as connection:
            record = await recognition_store.update_spec(connection, tenant_id, spec_id, changes)
        self.on_change()
        return record

    async def delete_spec(self, tenant_id: int, spec_id: str) -> None:
        async with self.database.write() as connection:
            await recognition_store.delete_spec(connection, tenant_id, spec_id)
        self.on_change()

    async def list_spec_versions(
        self, tenant_id: int, spec_id: str, *, offset: int, limit: int
    ) -> tuple[int, list[VersionRecord]]:
        async with self.database.read() as connection:
            return await recognition_store.list_spec_versions(
                connection, tenant_id, spec_id, offset=offset, limit=limit
            )

    # --- versions -----------------------------------------------------------------------------------

    async def create_version(
        self,
        tenant_id: int,
        *,
        spec_id: str,
        network_id: str,
        post_processings: Sequence[Mapping[str, Any]],
    ) -> VersionRecord:
        required = (("spec_id", spec_id), ("network_id", network_id))
        missing = [FieldViolation(name, "is required") for name, value in required if not value]
        if not post_processings:
            missing.append(FieldViolation("post_processings", "is required"))
        if missing:
            raise BadRequestError.of_violations(missing)
        async with self.database.read() as connection:
            spec, network_row_id = await recognition_store.resolve_for_version(
                connection, tenant_id, spec_id, network_id
            )
            network = await network_store.get_network_by_row_id(connection, tenant_id, network_row_id)
        try:
            VersionPostProcessor.from_json(spec.outputs, list(post_processings))
        except PostProcessingError as error:
            raise BadRequestError.of_violations(_violations(error)) from None
        files = await network_files(network, self.blobs)
        found = await self.validate(VersionCheck(network, files, spec.outputs, post_processings))
        if found:
            raise BadRequestError.of_violations([FieldViolation(f, m) for f, m in found])
        async with self.database.write() as connection:
            # Resolved again in the write transaction: the spec or network may have gone meanwhile.
            spec, network_row_id = await recognition_store.resolve_for_version(
                connection, tenant_id, spec_id, network_id
            )
            return await recognition_store.create_version(
                connection,
                tenant_id,
                spec_row_id=spec.row_id,
                network_row_id=network_row_id,
                post_processings=post_processings,
            )

    async def get_version(self, tenant_id: int, version_id: int) -> VersionRecord:
        async with self.database.read() as connection:
            return await recognition_store.get_version(connection, tenant_id, version_id)

    async def list_versions(
        self, tenant_id: int, *, offset: int, limit: int
    ) -> tuple[int, list[VersionRecord]]:
        async with self.database.read() as connection:
            return await recognition_store.list_versions(connection, tenant_id, offset=offset, limit=limit)

    async def delete_version(self, tenant_id: int, version_id: int) -> None:
        async with self.database.write() as connection:
            await recognition_store.delete_version(connection, tenant_id, version_id)
        self.on_change()
