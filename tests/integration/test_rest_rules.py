"""The REST gateway's rules, each against a live service on loopback with a plain HTTP client (http.client,
which follows no redirect) and multipart bodies encoded by hand: paths with or without the trailing slash,
never a redirect; JSON on every answer; id types; pages; both multipart forms with values converted by
schema; files by field name; validation errors; inference answered before its work is done; API keys;
status codes; the OpenAPI document."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import cv2
import grpc
import numpy as np
import pytest

from integration.harness import image_server
from integration.rest import Answer, LiveService, Part, call, flatten, multipart
from sightd.grpc.local import LocalUnaryUnary
from sightd.zoo import catalog, installed

MODEL = "imagenet-mobilenet-v2"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, zoo: installed.Zoo) -> Iterator[LiveService]:
    service = LiveService(tmp_path_factory.mktemp("rest-rules")).start()
    try:
        yield service
    finally:
        service.stop()


def get(live: LiveService, path: str, key: str | None = "acme") -> Answer:
    return call(live.http_port, "GET", path, key=live.key(key) if key else None)


def wait_task(live: LiveService, task_id: str, key: str = "acme") -> dict[str, Any]:
    for _ in range(600):
        task = get(live, f"/v0.7/tasks/{task_id}/", key).json
        if task["status"] != "pending":
            return dict(task)
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} still pending")


def network_form(zoo: installed.Zoo, *, json_text: bool, mean: bytes | None = None) -> list[Part]:
    preprocessing = json.loads(json.dumps(zoo.networks[MODEL].preprocessing))
    fields = {"name": "mine", "description": "", "metadata": {"origin": "test"}, "framework": "onnx"}
    parts = [Part(k, v) for k, v in flatten(fields)]
    if mean is not None:
        image = preprocessing["inputs"][0]["image"]
        image.pop("mean")
        image["mean_file"] = "mean.npy"
        parts.append(Part("mean.npy", mean, filename="a different name.npy"))
    if json_text:
        parts.append(Part("preprocessing", json.dumps(preprocessing)))
    else:
        parts += [Part(k, v) for k, v in flatten({"preprocessing": preprocessing})]
    parts.append(Part("model.onnx", zoo.networks[MODEL].path.read_bytes(), filename="model.onnx"))
    return parts


def create_network(live: LiveService, parts: list[Part], key: str = "acme") -> Answer:
    body, headers = multipart(parts)
    return call(live.http_port, "POST", "/v0.7/networks/", key=live.key(key), body=body, headers=headers)


def test_paths_with_or_without_slash_never_redirect(live: LiveService) -> None:
    for path in (
        "/v0.7/recognition/public",
        f"/v0.7/recognition/public/{MODEL}",
        f"/v0.7/recognition/public/{MODEL}/versions",
        f"/v0.7/networks/public/{MODEL}",
        "/v0.7/recognition/versions",
        "/v0.7/accounts/me",
    ):
        bare, slashed, doubled = (
            get(live, path),
            get(live, path + "/"),
            get(live, "/" + path.replace("/", "//")),
        )
        assert bare.status == slashed.status == doubled.status == 200, path
        assert bare.json == slashed.json == doubled.json
    body = {"inputs": [{"image": {"source": "data:image/png;base64," + _png_base64()}}]}
    for suffix in ("inference", "inference/"):
        answer = call(
            live.http_port,
            "POST",
            f"/v0.7/recognition/public/{MODEL}/{suffix}",
            key=live.key("acme"),
            document=body,
        )
        assert answer.status == 200, answer.body  # a POST answered where it was sent: no redirect
        assert answer.json["task_id"].isdigit()


def test_every_answer_is_json(live: LiveService) -> None:
    answers = [
        get(live, "/v0.7/networks/"),  # 200
        get(live, "/v0.7/networks/", key=None),  # 401
        get(live, "/v0.7/nothing/here/"),  # 404 (no route)
        get(live, "/elsewhere"),  # 404 (outside the API)
        get(live, "/v0.7/networks/424242/"),  # 404 (from the service)
        call(live.http_port, "DELETE", "/v0.7/tasks/1/", key=live.key("acme")),  # 405
        call(
            live.http_port, "POST", "/v0.7/recognition/specs/", key=live.key("acme"), body=b"{not json"
        ),  # 400
    ]
    assert [a.status for a in answers] == [200, 401, 404, 404, 404, 405, 400]
    for answer in answers:
        assert answer.headers["content-type"] == "application/json"
        document = answer.json
        if answer.status >= 400:
            assert isinstance(document["error"], str)
            assert document["error"]
    assert answers[1].json["reason"] == "API_KEY_MISSING"


def test_ids_and_task_ids_keep_one_json_type(live: LiveService, zoo: installed.Zoo) -> None:
    created = create_network(live, network_form(zoo, json_text=True))
    assert created.status == 201, created.body
    network = created.json
    assert isinstance(network["id"], int)
    assert isinstance(network["task_id"], str)
    assert network["task_id"].isdigit()
    assert wait_task(live, network["task_id"])["id"] == network["task_id"]
    public = get(live, "/v0.7/networks/public/").json["results"]
    assert {n["id"] for n in public} == set(catalog.NETWORKS)
    version = get(live, f"/v0.7/recognition/public/{MODEL}/versions").json["results"][0]
    assert isinstance(version["id"], int)
    assert (version["spec_id"], version["network_id"]) == (MODEL, MODEL)
    inference = call(
        live.http_port,
        "POST",
        f"/v0.7/networks/{network['id']}/inference",
        key=live.key("acme"),
        document={"inputs": [{"image": {"source": "data:image/png;base64," + _png_base64()}}]},
    ).json
    task = wait_task(live, inference["task_id"])
    assert (task["id"], task["status"]) == (inference["task_id"], "success"), task
    (tensor,) = task["data"]["tensors"]
    assert tensor["name"] == "logits"
    assert tensor["shape"] == tensor["dims"] == [1000]
    listed = get(live, f"/v0.7/tasks/?task_ids={inference['task_id']}").json["results"]
    assert [t["id"] for t in listed] == [inference["task_id"]]


def _png_base64() -> str:
    image = np.full((40, 60, 3), (30, 120, 200), np.uint8)
    ok, encoded = cv2.imencode(".png", image)
    assert ok
    return base64.b64encode(encoded.tobytes()).decode()


def test_pages_link_absolutely_with_every_parameter(live: LiveService) -> None:
    first = get(live, "/v0.7/recognition/public/?public=1&limit=4&foo=bar").json
    assert set(first) == {"count", "next", "previous", "prev", "results"}
    assert first["previous"] is None
    assert first["prev"] is None
    seen = [spec["id"] for spec in first["results"]]
    link = first["next"]
    while link is not None:
        parts = urlsplit(link)
        assert (parts.scheme, parts.netloc) == ("http", f"127.0.0.1:{live.http_port}")
        query = dict(parse_qsl(parts.query))
        assert (query["public"], query["foo"], query["limit"]) == ("1", "bar", "4")
        page = get(live, f"{parts.path}?{parts.query}").json
        assert page["previous"] == page["prev"]
        assert page["previous"] is not None
        seen += [spec["id"] for spec in page["results"]]
        link = page["next"]
    assert sorted(seen) == sorted(catalog.MODELS)
    assert first["count"] == len(catalog.MODELS)

    ids = []
    for _ in range(3):
        answer = call(
            live.http_port,
            "POST",
            f"/v0.7/recognition/public/{MODEL}/inference",
            key=live.key("acme"),
            document={"inputs": [{"image": {"source": _png_base64()}}]},
        )
        ids.append(answer.json["task_id"])
    page = get(live, f"/v0.7/tasks/?task_ids={ids[0]}&task_ids={ids[1]},{ids[2]}&limit=2").json
    assert page["count"] == 3
    assert len(page["results"]) == 2
    following = dict(parse_qsl(urlsplit(page["next"]).query))
    assert parse_qsl(urlsplit(page["next"]).query).count(("task_ids", ids[0])) == 1
    assert following["offset"] == "2"
    rest = get(live, page["next"].split(str(live.http_port), 1)[1]).json
    assert sorted(t["id"] for t in page["results"] + rest["results"]) == sorted(ids)
    assert get(live, "/v0.7/tasks/").json == {
        "count": 0,
        "next": None,
        "previous": None,
        "prev": None,
        "results": [],
    }


def test_both_multipart_forms_and_files_by_field_name(
    live: LiveService, zoo: installed.Zoo, darknet_data: Path
) -> None:
    buffer = io.BytesIO()  # the per-channel ImageNet mean as a NumPy file, HWC 1x1x3
    np.save(buffer, np.array([0.485, 0.456, 0.406]).reshape(1, 1, 3))
    flattened = create_network(live, network_form(zoo, json_text=False, mean=buffer.getvalue()))
    json_text = create_network(live, network_form(zoo, json_text=True))
    assert flattened.status == json_text.status == 201, flattened.body
    a, b = flattened.json, json_text.json
    expected = json.loads(json.dumps(zoo.networks[MODEL].preprocessing))
    assert b["preprocessing"] == expected  # types back from the strings: "True" is true, "0.875" a number
    image = expected["inputs"][0]["image"]
    image.pop("mean")
    image["mean_file"] = "mean.npy"
    assert a["preprocessing"] == expected
    assert sorted(f["field_name"] for f in a["files"]) == ["mean.npy", "model.onnx"]
    assert a["metadata"] == b["metadata"] == {"origin": "test"}

    # Inference as the official client sends a file: flattened keys, "True" and "2" as text, and a
    # scalar part labelled application/json whose body is not JSON.
    dog = (darknet_data / "dog.jpg").read_bytes()
    body, headers = multipart(
        [
            Part("show_discarded", "True"),
            Part("max_predictions", "2"),
            Part("inputs[0]image.source", dog, filename="inputs[0]image.source"),
            Part("inputs[0]image.crop_uniform_background", "False", content_type="application/json"),
        ]
    )
    answer = call(
        live.http_port,
        "POST",
        f"/v0.7/recognition/public/{MODEL}/inference",
        key=live.key("acme"),
        body=body,
        headers=headers,
    )
    assert answer.status == 200, answer.body
    labels = wait_task(live, answer.json["task_id"])["data"]["outputs"][0]["labels"]
    assert [p["label_name"] for p in labels["predicted"]] == ["malamute", "Eskimo dog"]
    assert len(labels["discarded"]) == 2  # max_predictions applies to each list


def test_validation_errors_are_400_with_an_error(live: LiveService, zoo: installed.Zoo) -> None:
    port, key = live.http_port, live.key("acme")
    spec_path = f"/v0.7/recognition/public/{MODEL}/inference"
    cases = [
        call(port, "POST", spec_path, key=key, document={"inputs": []}),
        call(port, "POST", spec_path, key=key, document={"inputs": [{"image": {"source": 3}}]}),
        call(port, "POST", spec_path, key=key, document={"inputs": [], "surprise": 1}),
        call(port, "POST", spec_path, key=key, document=[1, 2]),
        call(port, "GET", "/v0.7/recognition/public/?limit=-1", key=key),
        call(port, "GET", "/v0.7/recognition/public/?limit=5000", key=key),
        call(port, "POST", "/v0.7/recognition/versions/", key=key, document={"spec_id": True}),
        call(
            port, "POST", spec_path, key=key, body=b"\xff\xfe", headers={"Content-Type": "application/json"}
        ),
    ]
    for answer in cases:
        assert answer.status == 400, answer.body
        assert answer.json["error"]
        assert answer.json["code"] == "INVALID_ARGUMENT"
    parts = network_form(zoo, json_text=False)
    parts = [
        Part(p.name, "SIDEWAYS") if p.name.endswith("resize_type") else p
        for p in parts
        if not p.name.endswith("crop_ratio")
    ]
    refused = create_network(live, parts)
    assert refused.status == 400
    fields = [v["field"] for v in refused.json["field_violations"]]
    assert fields == ["preprocessing.inputs[0].image.resize_type"]
    body, headers = multipart([Part("max_predictions", "many"), Part("inputs[0]image.source", b"x", "f")])
    answer = call(port, "POST", spec_path, key=key, body=body, headers=headers)
    assert answer.status == 400
    assert answer.json["field_violations"][0]["field"] == "max_predictions"


def test_updates_take_what_a_retrieve_gave(live: LiveService, zoo: installed.Zoo) -> None:
    network = create_network(live, network_form(zoo, json_text=True)).json
    path = f"/v0.7/networks/{network['id']}/"
    port, key = live.http_port, live.key("acme")
    retrieved = get(live, path).json
    sent_back = call(port, "PUT", path, key=key, document={**retrieved, "name": "renamed", "task_id": "1"})
    assert sent_back.status == 200, sent_back.body
    assert sent_back.json == {**retrieved, "name": "renamed", "update_date": sent_back.json["update_date"]}
    changed = call(port, "PATCH", path, key=key, document={"framework": "caffe"})
    assert changed.status == 400
    assert changed.json["field_violations"][0]["field"] == "framework"
    assert call(port, "DELETE", path, key=key).status == 204
    assert get(live, path).status == 404


def test_keys_pass_through_and_status_codes(live: LiveService) -> None:
    port = live.http_port
    created = call(
        port,
        "POST",
        "/v0.7/recognition/specs/",
        key=live.key("acme"),
        document={
            "name": "s",
            "outputs": [{"labels": {"roi": "NONE", "exclusive": True, "labels": [{"id": 0, "name": "a"}]}}],
        },
    )
    assert created.status == 201, created.body
    spec_path = f"/v0.7/recognition/specs/{created.json['id']}/"
    assert get(live, spec_path, "globex").status == 404  # another tenant's key
    bearer = call(port, "GET", spec_path, headers={"Authorization": f"Bearer {live.key('acme')}"})
    assert bearer.status == 200
    wrong = call(port, "GET", spec_path, key="sd_nope_0123456789abcdef")
    assert (wrong.status, wrong.json["reason"]) == (401, "API_KEY_INVALID")
    read_only = call(port, "PATCH", f"/v0.7/recognition/public/{MODEL}/", key=live.key("acme"), document={})
    assert read_only.status == 200  # nothing to change
    read_only = call(
        port, "PATCH", f"/v0.7/recognition/public/{MODEL}/", key=live.key("acme"), document={"name": "x"}
    )
    assert (read_only.status, read_only.json["code"]) == (403, "PERMISSION_DENIED")
    no_version = call(
        port,
        "POST",
        spec_path + "inference",
        key=live.key("acme"),
        document={"inputs": [{"image": {"source": _png_base64()}}]},
    )
    assert (no_version.status, no_version.json["reason"]) == (400, "NO_CURRENT_VERSION")
    assert get(live, "/v0.7/recognition/versions/not-a-number/").status == 404
    assert get(live, "/v0.7/accounts/someone/").status == 404
    account = get(live, "/v0.7/accounts/me").json
    assert account["public_recognition_specs_count"] == len(catalog.MODELS)
    assert account["recognition_specs_count"] >= 1


def test_openapi_document_lists_every_route(live: LiveService) -> None:
    document = get(live, "/v0.7/openapi.json", key=None)
    assert document.status == 200
    assert document.headers["content-type"] == "application/json"
    paths = document.json["paths"]
    for path, methods in {
        "/v0.7/accounts/{id}/": {"get"},
        "/v0.7/networks/": {"get", "post"},
        "/v0.7/networks/public/": {"get"},
        "/v0.7/networks/{id}/": {"get", "patch", "put", "delete"},
        "/v0.7/networks/{id}/inference": {"post"},
        "/v0.7/recognition/specs/": {"get", "post"},
        "/v0.7/recognition/public/": {"get"},
        "/v0.7/recognition/specs/{id}/": {"get", "patch", "put", "delete"},
        "/v0.7/recognition/public/{id}/": {"get", "patch", "put", "delete"},
        "/v0.7/recognition/specs/{id}/versions": {"get"},
        "/v0.7/recognition/public/{id}/inference": {"post"},
        "/v0.7/recognition/specs/{id}/inference": {"post"},
        "/v0.7/recognition/versions/": {"get", "post"},
        "/v0.7/recognition/versions/{id}/": {"get", "delete"},
        "/v0.7/recognition/versions/{id}/inference": {"post"},
        "/v0.7/tasks/": {"get"},
        "/v0.7/tasks/{id}/": {"get"},
    }.items():
        assert set(paths[path]) == methods, path


def test_inference_answers_before_its_work_is_done(
    tmp_path: Path, zoo: installed.Zoo, darknet_data: Path
) -> None:
    """A URL that hangs until released: the POST answers its task id meanwhile (the official client's 8 s
    never depend on the work), the task is pending, and it succeeds once the image comes. With one running
    task allowed, a second inference is refused as load: 503 with Retry-After, which the client retries."""
    service = LiveService(tmp_path / "data", max_running_tasks=1).start()
    try:
        port, key = service.http_port, service.key("acme")
        with image_server(darknet_data) as images:
            source = {"inputs": [{"image": {"source": f"{images.url}/slow/dog.jpg"}}]}
            path = f"/v0.7/recognition/public/{MODEL}/inference"
            answer = call(port, "POST", path, key=key, document=source)
            assert answer.status == 200, answer.body
            task_id = answer.json["task_id"]
            assert get(service, f"/v0.7/tasks/{task_id}").json["status"] == "pending"
            busy = call(port, "POST", path, key=key, document=source)
            assert (busy.status, busy.json["reason"]) == (503, "TOO_MANY_TASKS")
            assert int(busy.headers["retry-after"]) >= 1
            images.release()
            task = wait_task(service, task_id)
        assert task["status"] == "success", task
        assert task["data"]["outputs"][0]["labels"]["predicted"][0]["label_name"] == "malamute"
    finally:
        service.stop()


def test_a_task_get_waits_for_the_task_when_configured(
    tmp_path: Path, zoo: installed.Zoo, darknet_data: Path
) -> None:
    """With rest_task_wait_seconds, GET of a pending task answers once the task is done, or as it is when
    the wait runs out; an unknown task is still 404."""
    wait = 3.0
    service = LiveService(tmp_path / "data", rest_task_wait_seconds=wait).start()
    try:
        port, key = service.http_port, service.key("acme")
        path = f"/v0.7/recognition/public/{MODEL}/inference"
        with image_server(darknet_data) as images:
            first = {"inputs": [{"image": {"source": f"{images.url}/dog.jpg"}}]}
            warm = call(port, "POST", path, key=key, document=first)
            assert wait_task(service, warm.json["task_id"])["status"] == "success"  # the model is loaded
            slow = {"inputs": [{"image": {"source": f"{images.url}/slow/dog.jpg"}}]}
            task_id = call(port, "POST", path, key=key, document=slow).json["task_id"]
            began = time.monotonic()
            pending = get(service, f"/v0.7/tasks/{task_id}")
            waited = time.monotonic() - began
            assert (pending.status, pending.json["status"]) == (200, "pending")
            assert waited >= wait - 0.2  # the whole wait: nothing finished it
            threading.Timer(0.3, images.release).start()
            began = time.monotonic()
            done = get(service, f"/v0.7/tasks/{task_id}").json
            waited = time.monotonic() - began
        assert done["status"] == "success", done
        assert done["data"]["outputs"][0]["labels"]["predicted"][0]["label_name"] == "malamute"
        assert waited < wait  # answered when the task was done, not when the wait ran out
        missing = get(service, "/v0.7/tasks/987654321")
        assert (missing.status, missing.json["code"]) == (404, "NOT_FOUND")
    finally:
        service.stop()


def test_the_embedded_gateway_calls_the_server_in_process(live: LiveService) -> None:
    """sightd serve's gateway: unary calls in-process (sightd.grpc.local), the streamed upload over the
    server's Unix socket. What each path answers is compared in tests/integration/test_grpc_local.py."""
    assert live.running is not None
    gateway = live.running.service.gateway
    assert gateway is not None
    stubs = gateway.server.config.app.stubs
    assert isinstance(stubs.inference.Infer, LocalUnaryUnary)
    assert isinstance(stubs.tasks.GetTask, LocalUnaryUnary)
    assert isinstance(stubs.networks.CreateNetwork, grpc.aio.StreamUnaryMultiCallable)
