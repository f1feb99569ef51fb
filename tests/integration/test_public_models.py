"""The built zoo registered as public networks, specs and versions: visible to every tenant, read-only,
registered again without duplicates, brought up to date when the zoo changes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from sightd.app import public_models
from sightd.app.errors import PermissionDeniedError
from sightd.store import keys, networks, recognition
from sightd.store.blobs import BlobStore
from sightd.store.database import Database
from sightd.zoo import artifacts, catalog, installed


async def test_every_tenant_sees_the_zoo_read_only(
    database: Database, tmp_path: Path, zoo: installed.Zoo
) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    registered = await public_models.register(database, blobs, zoo)
    assert registered.networks == sorted(catalog.NETWORKS)
    assert sorted(registered.specs) == sorted(catalog.MODELS)
    async with database.write() as connection:
        acme = await keys.ensure_tenant(connection, "acme")
        globex = await keys.ensure_tenant(connection, "globex")
    async with database.read() as connection:
        for tenant in (acme, globex):
            count, listed = await networks.list_networks(connection, tenant, public=True, limit=100)
            assert count == len(catalog.NETWORKS)
            assert {n.id for n in listed} == set(catalog.NETWORKS)
            assert (await networks.list_networks(connection, tenant, public=False))[0] == 0
        mobilenet = await networks.get_network(connection, acme, "imagenet-mobilenet-v2")
        (model_file,) = mobilenet.files
        assert model_file.field_name == "model.onnx"
        assert model_file.sha256 == artifacts.sha256_of(zoo.networks["imagenet-mobilenet-v2"].path)
        assert (
            blobs.path(model_file.sha256).read_bytes()
            == zoo.networks["imagenet-mobilenet-v2"].path.read_bytes()
        )
        assert mobilenet.preprocessing == zoo.networks["imagenet-mobilenet-v2"].preprocessing
        spec = await recognition.get_spec(connection, globex, "coco-yolov3-tiny")
        assert spec.public
        assert spec.outputs == zoo.models["coco-yolov3-tiny"].spec["outputs"]
        assert spec.current_version_id == registered.specs["coco-yolov3-tiny"]
        version = await recognition.get_version(connection, globex, registered.specs["street-v1"])
        assert (version.spec_id, version.network_id, version.public) == (
            "street-v1",
            "coco-yolov3-tiny",
            True,
        )
        assert version.post_processings == [zoo.models["street-v1"].post_processing]
    async with database.write() as connection:
        with pytest.raises(PermissionDeniedError):
            await networks.update_network(connection, acme, "imagenet-mobilenet-v2", {"name": "mine"})
        with pytest.raises(PermissionDeniedError):
            await recognition.delete_spec(connection, acme, "nsfw-v1")


async def test_registering_again_changes_only_what_differs(
    database: Database, tmp_path: Path, zoo: installed.Zoo
) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    first = await public_models.register(database, blobs, zoo)
    assert await public_models.register(database, blobs, zoo) == first
    # A new zoo release: street-v1 gets another post-processing, mobilenet another preprocessing.
    street = zoo.models["street-v1"]
    changed_post = {"detection": {**street.post_processing["detection"], "nms_threshold": 0.5}}
    mobilenet = zoo.networks["imagenet-mobilenet-v2"]
    changed_pre = {**mobilenet.preprocessing, "batched_output": False}
    release = dataclasses.replace(
        zoo,
        models={**zoo.models, "street-v1": dataclasses.replace(street, post_processing=changed_post)},
        networks={
            **zoo.networks,
            "imagenet-mobilenet-v2": dataclasses.replace(mobilenet, preprocessing=changed_pre),
        },
    )
    second = await public_models.register(database, blobs, release)
    assert second.specs["street-v1"] != first.specs["street-v1"]
    assert {k: v for k, v in second.specs.items() if k != "street-v1"} == {
        k: v for k, v in first.specs.items() if k != "street-v1"
    }
    async with database.read() as connection:
        tenant = 1
        versions = await recognition.list_spec_versions(connection, tenant, "street-v1")
        assert versions[0] == 2  # the old version stays (tasks may name it), the spec points at the new
        assert (
            await recognition.get_spec(connection, tenant, "street-v1")
        ).current_version_id == second.specs["street-v1"]
        network = await networks.get_network(connection, tenant, "imagenet-mobilenet-v2")
        assert network.preprocessing == changed_pre
