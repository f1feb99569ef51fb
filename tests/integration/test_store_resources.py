"""Networks, specs and versions in the store: CRUD, pages, tenant isolation, public resources, cascades."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from sightd.app.errors import AlreadyExistsError, BadRequestError, NotFoundError, PermissionDeniedError
from sightd.store import keys, networks, recognition
from sightd.store.blobs import BlobStore
from sightd.store.database import Database
from sightd.store.schema import blobs as blobs_table

PREPROCESSING = {"inputs": [{"tensor_name": "data", "image": {"target_size": "224x224"}}]}
OUTPUTS = [{"labels": {"roi": "NONE", "exclusive": True, "labels": [{"id": 0, "name": "cat"}]}}]
CLASSIFICATION = [{"classification": {"output_tensor": "prob", "thresholds": [0.5]}}]


async def _tenants(database: Database) -> tuple[int, int]:
    async with database.write() as connection:
        return await keys.ensure_tenant(connection, "acme"), await keys.ensure_tenant(connection, "globex")


async def test_network_life_cycle_with_deduplicated_files(database: Database, tmp_path: Path) -> None:
    acme, _ = await _tenants(database)
    store = BlobStore(tmp_path / "blobs")
    model, mean = store.put(b"onnx model"), store.put(b"mean")
    async with database.write() as connection:
        first = await networks.create_network(
            connection,
            acme,
            name="net",
            framework="onnx",
            preprocessing=PREPROCESSING,
            metadata={"origin": "test"},
            files={"model.onnx": model, "mean.npy": mean},
        )
        second = await networks.create_network(
            connection,
            acme,
            name="copy",
            framework="onnx",
            preprocessing=PREPROCESSING,
            files={"m.onnx": model},
        )
    assert first.id == str(first.row_id)
    assert [f.field_name for f in first.files] == ["mean.npy", "model.onnx"]
    async with database.read() as connection:
        fetched = await networks.get_network(connection, acme, first.id)
        assert fetched == first
        assert await connection.scalar(sa.select(sa.func.count()).select_from(blobs_table)) == 2
        updated_count, page = await networks.list_networks(connection, acme, public=False)
    assert updated_count == 2
    assert [n.name for n in page] == ["copy", "net"]

    async with database.write() as connection:
        changed = await networks.update_network(connection, acme, first.id, {"description": "updated"})
    assert (changed.description, changed.name, changed.metadata) == ("updated", "net", {"origin": "test"})
    assert changed.updated_at >= first.updated_at

    async with database.write() as connection:
        # The model blob is still used by the second network: only the mean file becomes unused.
        assert await networks.delete_network(connection, acme, first.id) == [mean.sha256]
        assert await networks.delete_network(connection, acme, second.id) == [model.sha256]
    async with database.read() as connection:
        with pytest.raises(NotFoundError):
            await networks.get_network(connection, acme, first.id)
        assert await connection.scalar(sa.select(sa.func.count()).select_from(blobs_table)) == 0


async def test_tenants_see_their_own_and_public_resources_only(database: Database) -> None:
    acme, globex = await _tenants(database)
    async with database.write() as connection:
        private = await networks.create_network(
            connection, acme, name="mine", framework="onnx", preprocessing=PREPROCESSING
        )
        public = await networks.create_network(
            connection, None, name="Zoo", framework="onnx", preprocessing=PREPROCESSING, public_id="zoo-net"
        )
        with pytest.raises(AlreadyExistsError):
            await networks.create_network(
                connection,
                None,
                name="Zoo",
                framework="onnx",
                preprocessing=PREPROCESSING,
                public_id="zoo-net",
            )
    assert public.id == "zoo-net"
    assert public.public
    async with database.read() as connection:
        with pytest.raises(NotFoundError):
            await networks.get_network(connection, globex, private.id)
        # A public network is not reachable through its row id, only through its name.
        with pytest.raises(NotFoundError):
            await networks.get_network(connection, globex, str(public.row_id))
        assert (await networks.get_network(connection, globex, "zoo-net")).name == "Zoo"
        assert (await networks.list_networks(connection, globex, public=False))[0] == 0
        count, listed = await networks.list_networks(connection, globex, public=True)
        assert (count, [n.id for n in listed]) == (1, ["zoo-net"])
    async with database.write() as connection:
        with pytest.raises(PermissionDeniedError):
            await networks.update_network(connection, globex, "zoo-net", {"name": "mine now"})
        with pytest.raises(NotFoundError):
            await networks.delete_network(connection, globex, private.id)
        with pytest.raises(BadRequestError):
            await networks.update_network(connection, acme, private.id, {"framework": "caffe"})


async def test_public_names_never_look_like_private_ids(database: Database) -> None:
    async with database.write() as connection:
        with pytest.raises(BadRequestError):
            await recognition.create_spec(connection, None, name="n", outputs=OUTPUTS, public_id="123")
        with pytest.raises(BadRequestError):
            await recognition.create_spec(connection, None, name="n", outputs=OUTPUTS, public_id="Upper Case")


async def test_pages_count_everything_and_slice_newest_first(database: Database) -> None:
    acme, _ = await _tenants(database)
    async with database.write() as connection:
        for index in range(5):
            await recognition.create_spec(connection, acme, name=f"spec {index}", outputs=OUTPUTS)
    async with database.read() as connection:
        count, page = await recognition.list_specs(connection, acme, public=False, offset=1, limit=2)
        assert (count, [s.name for s in page]) == (5, ["spec 3", "spec 2"])
        with pytest.raises(BadRequestError):
            await recognition.list_specs(connection, acme, public=False, limit=5000)
        with pytest.raises(BadRequestError):
            await recognition.list_specs(connection, acme, public=False, offset=-1)


async def test_versions_current_version_and_cascades(database: Database) -> None:
    acme, globex = await _tenants(database)
    async with database.write() as connection:
        network = await networks.create_network(
            connection, acme, name="net", framework="onnx", preprocessing=PREPROCESSING
        )
        spec = await recognition.create_spec(connection, acme, name="spec", outputs=OUTPUTS)
        other_spec = await recognition.create_spec(connection, acme, name="other", outputs=OUTPUTS)
        resolved, network_row = await recognition.resolve_for_version(connection, acme, spec.id, network.id)
        version = await recognition.create_version(
            connection,
            acme,
            spec_row_id=resolved.row_id,
            network_row_id=network_row,
            post_processings=CLASSIFICATION,
        )
        assert (version.spec_id, version.network_id) == (spec.id, network.id)
        with pytest.raises(BadRequestError) as refused:
            await recognition.update_spec(connection, acme, other_spec.id, {"current_version_id": version.id})
        assert refused.value.violations[0].field == "current_version_id"
        updated = await recognition.update_spec(connection, acme, spec.id, {"current_version_id": version.id})
        assert updated.current_version_id == version.id
    async with database.read() as connection:
        with pytest.raises(NotFoundError):
            await recognition.get_version(connection, globex, version.id)
        with pytest.raises(NotFoundError) as missing:
            await recognition.resolve_for_version(connection, globex, spec.id, network.id)
        assert [v.field for v in missing.value.violations] == ["spec_id", "network_id"]
        assert (await recognition.list_spec_versions(connection, acme, spec.id))[0] == 1
        assert (await recognition.list_versions(connection, acme))[0] == 1
    async with database.write() as connection:
        # Deleting the network deletes its versions and clears the spec's current version.
        await networks.delete_network(connection, acme, network.id)
    async with database.read() as connection:
        assert (await recognition.get_spec(connection, acme, spec.id)).current_version_id is None
        with pytest.raises(NotFoundError):
            await recognition.get_version(connection, acme, version.id)


async def test_deleting_a_version_clears_the_current_version(database: Database) -> None:
    acme, _ = await _tenants(database)
    async with database.write() as connection:
        network = await networks.create_network(
            connection, acme, name="net", framework="onnx", preprocessing=PREPROCESSING
        )
        spec = await recognition.create_spec(connection, acme, name="spec", outputs=OUTPUTS)
        version = await recognition.create_version(
            connection,
            acme,
            spec_row_id=spec.row_id,
            network_row_id=network.row_id,
            post_processings=CLASSIFICATION,
        )
        await recognition.update_spec(connection, acme, spec.id, {"current_version_id": version.id})
        await recognition.delete_version(connection, acme, version.id)
        assert (await recognition.get_spec(connection, acme, spec.id)).current_version_id is None
        await recognition.delete_spec(connection, acme, spec.id)
        with pytest.raises(NotFoundError):
            await recognition.get_spec(connection, acme, spec.id)


async def test_versions_of_public_specs_are_public_and_read_only(database: Database) -> None:
    _, globex = await _tenants(database)
    async with database.write() as connection:
        network = await networks.create_network(
            connection, None, name="n", framework="onnx", preprocessing=PREPROCESSING, public_id="zoo-net"
        )
        spec = await recognition.create_spec(
            connection, None, name="s", outputs=OUTPUTS, public_id="zoo-spec"
        )
        version = await recognition.create_version(
            connection,
            None,
            spec_row_id=spec.row_id,
            network_row_id=network.row_id,
            post_processings=CLASSIFICATION,
        )
    async with database.read() as connection:
        seen = await recognition.get_version(connection, globex, version.id)
        assert (seen.spec_id, seen.network_id, seen.public) == ("zoo-spec", "zoo-net", True)
        assert (await recognition.list_spec_versions(connection, globex, "zoo-spec"))[0] == 1
    async with database.write() as connection:
        with pytest.raises(PermissionDeniedError):
            await recognition.delete_version(connection, globex, version.id)
        with pytest.raises(PermissionDeniedError):
            await recognition.resolve_for_version(connection, globex, "zoo-spec", "zoo-net")
