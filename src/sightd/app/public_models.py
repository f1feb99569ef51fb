"""The public models: the built zoo registered as read-only public networks, specs and versions that every
API key sees (docs/zoo.md), at start-up.

Each zoo network becomes a public network named after it, its ONNX file a blob (hard-linked from the zoo
when the two folders share a file system, copied otherwise); each public model a public spec of the same
name whose current version runs its network with its post-processing. Registering again after a rebuild
changes only what differs.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sightd.store import public
from sightd.store.blobs import BlobStore
from sightd.store.database import Database
from sightd.zoo import installed

log = logging.getLogger(__name__)
MODEL_FIELD = "model.onnx"


@dataclass(frozen=True)
class Registered:
    """Public names now served: networks and specs (with their current version id)."""

    networks: list[str]
    specs: dict[str, int]


async def register(database: Database, blobs: BlobStore, zoo: installed.Zoo) -> Registered:
    files = {
        name: await asyncio.to_thread(blobs.adopt, network.path, network.sha256)
        for name, network in zoo.networks.items()
    }
    unused: list[str] = []
    specs: dict[str, int] = {}
    async with database.write() as connection:
        await public.lock_registration(connection)
        records = {}
        for name, network in zoo.networks.items():
            records[name], dropped = await public.put_network(
                connection,
                name,
                name=name,
                description=network.description,
                framework="onnx",
                preprocessing=network.preprocessing,
                files={MODEL_FIELD: files[name]},
            )
            unused += dropped
        for name, model in zoo.models.items():
            spec = await public.put_spec(
                connection,
                name,
                name=str(model.spec.get("name", name)),
                description=str(model.spec.get("description", model.description)),
                outputs=model.spec["outputs"],
            )
            version = await public.put_current_version(
                connection, spec, records[model.network], [model.post_processing]
            )
            specs[name] = version.id
    for sha256 in unused:
        await asyncio.to_thread(blobs.delete, sha256)
    log.info("public models registered", extra={"networks": len(records), "specs": len(specs)})
    return Registered(sorted(records), specs)
