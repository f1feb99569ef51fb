"""What the runtime runs, built from the store: the definition of a version (by its id or its spec's current
version) or of a network, and the checks of new networks and versions.

A definition's ``key`` names the model the runtime builds and caches: it changes whenever what the model is
made of changes (the network file, the spec's outputs), so a cached model never outlives its documents.

Looking a definition up takes several store reads (spec, version, network, mean files): it is remembered
for ``ttl`` seconds per tenant and target, and the requests that need the same definition at the same time
share one lookup (under load, every request arriving while it is being looked up again would otherwise read
the store too). A change made through this instance (any network, spec or version written) forgets every
remembered definition at once (:meth:`Definitions.forget`), and a lookup that began before the change is
not remembered; one made through another replica is seen within ``ttl``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence

from sightd.app.errors import FailedPreconditionError, FieldViolation, quoted
from sightd.app.networks import NetworkCheck, network_files
from sightd.app.recognition import VersionCheck
from sightd.remembered import RememberedLookups
from sightd.runtime import NetworkDefinition, Runtime, VersionDefinition
from sightd.store import networks as network_store
from sightd.store import recognition as recognition_store
from sightd.store.blobs import BlobStore
from sightd.store.database import Database


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]


DEFAULT_TTL = 1.0
_MAX_REMEMBERED = 1024


class Definitions:
    """Looks up, for a tenant, the definitions of the versions and networks it may run."""

    def __init__(
        self, database: Database, blobs: BlobStore, runtime: Runtime, *, ttl: float = DEFAULT_TTL
    ) -> None:
        self.database = database
        self.blobs = blobs
        self.runtime = runtime
        self._remembered: RememberedLookups[tuple[object, ...], VersionDefinition | NetworkDefinition] = (
            RememberedLookups(ttl, _MAX_REMEMBERED)
        )

    def forget(self) -> None:
        """Something was written: no remembered definition may be used again, nor any lookup in progress."""
        self._remembered.forget()

    async def version(
        self, tenant_id: int, *, spec_id: str | None = None, version_id: int | None = None
    ) -> VersionDefinition:
        """The version a request targets: ``version_id``, or the current version of ``spec_id``."""
        definition = await self._remembered.get(
            ("version", tenant_id, spec_id, version_id), lambda: self._version(tenant_id, spec_id, version_id)
        )
        assert isinstance(definition, VersionDefinition)
        return definition

    async def _version(
        self, tenant_id: int, spec_id: str | None, version_id: int | None
    ) -> VersionDefinition:
        async with self.database.read() as connection:
            if spec_id is not None:
                spec = await recognition_store.get_spec(connection, tenant_id, spec_id)
                if spec.current_version_id is None:
                    raise FailedPreconditionError(
                        f"recognition spec {quoted(spec_id)} has no current version: create a version and "
                        "set the spec's current_version_id",
                        reason="NO_CURRENT_VERSION",
                        violations=[FieldViolation("spec_id", "the spec has no current version")],
                        metadata={"spec_id": spec_id[:64]},
                    )
                version = await recognition_store.get_version(connection, tenant_id, spec.current_version_id)
            elif version_id is not None:
                version = await recognition_store.get_version(connection, tenant_id, version_id)
                spec = await recognition_store.get_spec(connection, tenant_id, version.spec_id)
            else:
                raise ValueError("a version or a spec is needed")
            network = await network_store.get_network_by_row_id(connection, tenant_id, version.network_row_id)
        files = await network_files(network, self.blobs)
        return VersionDefinition(
            key=f"version:{version.id}:{files.model_sha256[:16]}:{_digest(spec.outputs)}",
            network_path=files.model_path,
            preprocessing=network.preprocessing,
            mean_files=files.mean_files,
            spec_outputs=spec.outputs,
            post_processings=version.post_processings,
        )

    async def network(self, tenant_id: int, network_id: str) -> NetworkDefinition:
        definition = await self._remembered.get(
            ("network", tenant_id, network_id), lambda: self._network(tenant_id, network_id)
        )
        assert isinstance(definition, NetworkDefinition)
        return definition

    async def _network(self, tenant_id: int, network_id: str) -> NetworkDefinition:
        async with self.database.read() as connection:
            network = await network_store.get_network(connection, tenant_id, network_id)
        files = await network_files(network, self.blobs)
        return NetworkDefinition(
            key=f"network:{network.row_id}:{files.model_sha256[:16]}",
            network_path=files.model_path,
            preprocessing=network.preprocessing,
            mean_files=files.mean_files,
        )

    async def check_network(self, check: NetworkCheck) -> Sequence[tuple[str, str]]:
        """The runtime's violations of a network being created (fields of the network document)."""
        return await self.runtime.validate(
            NetworkDefinition(
                key=f"check:{uuid.uuid4().hex}",
                network_path=check.model_path,
                preprocessing=check.preprocessing,
                mean_files=check.mean_files,
            )
        )

    async def check_version(self, check: VersionCheck) -> Sequence[tuple[str, str]]:
        """The runtime's violations of a version being created (fields of the version document)."""
        return await self.runtime.validate(
            VersionDefinition(
                key=f"check:{uuid.uuid4().hex}",
                network_path=check.files.model_path,
                preprocessing=check.network.preprocessing,
                mean_files=check.files.mean_files,
                spec_outputs=check.spec_outputs,
                post_processings=check.post_processings,
            )
        )
