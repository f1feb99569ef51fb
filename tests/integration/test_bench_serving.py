"""Smoke tests of bench/serving.py (with bench/loadgen.py) and bench/plot_serving.py: one model, dog.jpg, two
concurrencies, a few requests, one round, every variant (the peers where .venv-peers is installed; skipped
with a reason otherwise), and the gRPC variants again with the Python load generator, so that the scripts
never rot. The figures are checked for sanity and structure (positive rates, p50 <= p99, the limit's
arithmetic, the ratios), never against a timing goal. Also the load generator's own pieces that the servers
of this run do not exercise: its protobuf wire helpers against protobuf, and its HTTP client on chunked and
closing answers."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from integration.canned_http import CannedHttp
from sightd.v1 import common_pb2, inference_pb2
from sightd.zoo import installed

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
MODEL = "imagenet-mobilenet-v2"
CONCURRENCY = (1, 2)
SIGHTD = ("grpc_unary", "grpc_infer_wait", "grpc_stream", "rest", "rest_task_wait", "grpc_unary_batching")
INPROCESS = ("inprocess_recognizer", "inprocess_runtime")
BARE = "grpc_bare"
BARE_NATIVE = ("grpc_bare_native", "grpc_bare_native_threads")
PEERS = ("diy", "diy_threadpool", "bentoml")


@pytest.fixture(scope="module")
def loadgen() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCH))
    try:
        import loadgen

        yield loadgen
    finally:
        sys.path.remove(str(BENCH))


def run_serving(out: Path, *extra: str) -> dict[str, Any]:
    """bench/serving.py on MODEL and dog.jpg, a few requests per cell, one round; its JSON line, checked
    against the file it also wrote."""
    arguments = ["--models", MODEL, "--images", "dog", "--requests", "4", "--rounds", "1",
                 "--limit-seconds", "0.1", "--check-every", "2", "--json-out", str(out), *extra]  # fmt: skip
    result = subprocess.run(
        [sys.executable, str(BENCH / "serving.py"), *arguments],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = result.stdout.strip().splitlines()
    parsed: dict[str, Any] = json.loads(lines[-1])
    assert json.loads(out.read_text()) == parsed
    assert any(line.startswith(f"{MODEL} limit: R = ") for line in lines)
    return parsed


@pytest.fixture(scope="module")
def record(zoo: installed.Zoo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("serving") / "serving.json"
    return run_serving(out, "--concurrency", *map(str, CONCURRENCY))


def test_serving_bench_runs(record: dict[str, Any]) -> None:
    assert record["bench"] == "serving"
    machine = record["machine"]
    for key in ("cpu", "cores", "load_average", "python", "grpcio", "onnxruntime", "numpy", "opencv_python"):
        assert machine[key], key
    assert record["settings"]["variants"] == [*INPROCESS, *SIGHTD, BARE, *BARE_NATIVE, *PEERS]

    limit = record["limit"][MODEL]
    assert limit["R"] == max(limit["inference_images_per_second"].values()) > 0
    assert len(limit["inference_images_per_second"]) == 6  # batch 1, 2, 8 x two thread layouts
    decode = limit["decode_preprocess_ms"]["dog"]
    assert limit["d_ms"]["dog"] == min(decode.values()) > 0
    expected = 1 / (1 / limit["R"] + limit["d_ms"]["dog"] / 1000 / limit["cores"])
    assert limit["images_per_second"]["dog"] == pytest.approx(expected, rel=0.01)

    skipped = record["skipped"]
    measured = {row["variant"] for row in record["results"]}
    for peer in PEERS:  # a peer is measured, or skipped with its reason
        assert (peer in measured) != (f"{peer}/{MODEL}" in skipped), peer
    assert set(skipped) <= {f"{peer}/{MODEL}" for peer in PEERS}
    assert all(reason for reason in skipped.values())
    rows = {(row["variant"], row["concurrency"]): row for row in record["results"]}
    assert set(rows) == {(v, c) for v in measured for c in CONCURRENCY}
    assert measured >= {*SIGHTD, *INPROCESS, BARE, *BARE_NATIVE}
    for (variant, concurrency), row in rows.items():
        assert row["model"] == MODEL
        assert row["image"] == "dog"
        assert row["requests"] == [4]
        assert row["images_per_second"] > 0
        assert 0 < row["p50_ms"] <= row["p99_ms"]
        assert row["server_cpu_ms_per_image"] >= 0
        assert row["peak_rss_mib"] > 0
        assert row["over_limit"] == pytest.approx(
            row["images_per_second"] / limit["images_per_second"]["dog"], rel=0.01
        )
        bare = rows[(BARE, concurrency)]
        assert row["over_grpc_bare"] == pytest.approx(
            row["images_per_second"] / bare["images_per_second"], rel=0.01
        )
        assert row["p99_over_grpc_bare"] == pytest.approx(row["p99_ms"] / bare["p99_ms"], rel=0.01)
        for peer in PEERS:
            ratio = row[f"over_{peer}"]
            if peer in measured:
                peer_row = rows[(peer, concurrency)]
                assert ratio == pytest.approx(
                    row["images_per_second"] / peer_row["images_per_second"], rel=0.01
                )
                assert row[f"p99_over_{peer}"] > 0
            else:
                assert ratio is None
        if variant in INPROCESS:
            assert row["client_cpu_ms_per_request"] is None
        else:
            assert row["client_cpu_ms_per_request"] > 0
        if variant in SIGHTD or variant == "inprocess_runtime":
            # sightd's batches, from its metrics: one image each at least, never more than were in flight
            assert 1 <= row["average_batch"] <= concurrency
        if variant in SIGHTD:
            assert row["rss_end_mib"] > 0
        if variant in ("rest", "rest_task_wait"):
            # each image's task seen done after one GET or more: 4 images per round, 1 round
            looks = {int(n): count for n, count in row["task_looks"].items()}
            assert min(looks) >= 1
            assert sum(looks.values()) == 4
            assert row["task_looks_per_image"] == pytest.approx(sum(n * c for n, c in looks.items()) / 4)
        else:
            assert "task_looks" not in row
        if (variant in SIGHTD and variant != "grpc_unary_batching") or variant == "inprocess_runtime":
            assert row["average_batch"] == 1  # the service's default on the CPU: no batching
    servers = record["servers"][MODEL]
    assert set(servers) == {"sightd", "sightd_batching", "sightd_task_wait"}
    for server in servers.values():
        assert 0 < server["rss_end_mib"] <= server["peak_rss_mib"]


def test_serving_bench_python_client(zoo: installed.Zoo, tmp_path: Path) -> None:
    """The gRPC variants loaded by bench/loadgen.py instead of the native load generator."""
    variants = ("grpc_unary", "grpc_stream", BARE, *BARE_NATIVE)
    record = run_serving(
        tmp_path / "serving.json", "--concurrency", "2", "--client", "python", "--variants", *variants
    )
    assert record["settings"]["client"] == "python"
    rows = {row["variant"]: row for row in record["results"]}
    assert set(rows) == set(variants)
    for row in rows.values():
        assert row["requests"] == [4]
        assert row["images_per_second"] > 0
        assert row["client_cpu_ms_per_request"] > 0
    assert rows["grpc_unary"]["over_grpc_bare"] == pytest.approx(
        rows["grpc_unary"]["images_per_second"] / rows[BARE]["images_per_second"], rel=0.01
    )


def test_plot_serving_draws_the_record(record: dict[str, Any], tmp_path: Path) -> None:
    python = ROOT / ".venv-peers" / "bin" / "python"
    probe = [str(python), "-c", "import matplotlib"]
    if not python.is_file() or subprocess.run(probe, check=False, capture_output=True).returncode:
        pytest.skip("matplotlib is in .venv-peers, which is not installed here (make peers)")
    out = tmp_path / "serving.png"
    result = subprocess.run(
        [str(python), str(BENCH / "plot_serving.py"), "-", "--out", str(out)],
        input="a line of the run's output\n" + json.dumps(record) + "\n",
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "grpc_unary" in result.stdout
    assert "limit" in result.stdout


def test_loadgen_wire_format(loadgen: ModuleType) -> None:
    request = inference_pb2.RecognizeRequest(
        spec_id=MODEL, inputs=[common_pb2.Input(image=common_pb2.ImageInput(data=b"\xff" * 300))]
    )
    payload = request.SerializeToString()
    stream = loadgen.encode_bytes_field(1, b"17") + loadgen.encode_bytes_field(2, payload)
    parsed = inference_pb2.RecognizeStreamRequest.FromString(stream)
    assert parsed.request_id == "17"
    assert parsed.request == request
    answer = inference_pb2.RecognizeStreamResponse(request_id="123456")
    answer.result.outputs.add().labels.predicted.add(label_name="malamute", score=0.76)
    data = answer.SerializeToString()
    assert loadgen.read_bytes_field(data, 1) == b"123456"
    assert loadgen.read_bytes_field(data, 3) is None  # no error
    assert inference_pb2.RecognitionResult.FromString(loadgen.read_bytes_field(data, 2)) == answer.result
    assert loadgen.encode_varint(300) == b"\xac\x02"


def test_loadgen_http_client(loadgen: ModuleType) -> None:
    """Keep-alive answers with a length, a chunked one, and one that closes the connection."""
    answers = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst",
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nchun\r\n3;x=y\r\nked\r\n0\r\n\r\n",
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    ]
    server = CannedHttp(answers)

    async def scenario() -> list[tuple[int, bytes]]:
        async with server:
            connection = loadgen.HttpConnection("127.0.0.1", server.port)
            post = loadgen.http_request(
                "POST", "/predict", f"127.0.0.1:{server.port}", b"image", {"X-Key": "k"}
            )
            try:
                return [await connection.send(post) for _ in range(4)]
            finally:
                await connection.close()

    got = asyncio.run(scenario())
    seen = [line + b" " + body for line, body in server.requests]
    connections = server.connections
    assert got == [(200, b"first"), (201, b"chunked"), (503, b"busy"), (200, b"")]
    assert seen == [b"POST /predict HTTP/1.1 image"] * 4
    assert connections == 2  # the closed connection was opened again
