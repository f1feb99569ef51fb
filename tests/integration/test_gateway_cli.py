"""The gateway as an operator runs it: ``sightd serve`` starts it next to gRPC (and says where), over HTTPS
when the service has a certificate, and ``sightd gateway --grpc-target HOST:PORT`` runs it alone in front of
a service; a gateway whose service is unreachable answers 503 with Retry-After (the official client retries
it), and both stop on SIGTERM."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from integration.harness import ServeProcess
from integration.rest import LiveService, call
from sightd.zoo import catalog, installed

KEY = "operator-chosen-key-0123456789"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, zoo: installed.Zoo) -> Iterator[ServeProcess]:
    server = ServeProcess(tmp_path_factory.mktemp("served"), environ={"SIGHTD_API_KEY": KEY})
    try:
        server.wait_serving()
        yield server
    finally:
        server.close()


class Gateway:
    """``sightd gateway`` as a process; ``port`` read from the line it prints once serving."""

    def __init__(self, target: str, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIGHTD_")}
        command = [sys.executable, "-m", "sightd.cli", "gateway", "--grpc-target", target, "--http-port", "0"]
        with log.open("wb") as handle:
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=handle, env=env)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()
        found = re.search(r"on http://127\.0\.0\.1:(\d+)/v0\.7/ -> gRPC", line)
        assert found, line + log.read_text()
        self.port = int(found.group(1))

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)


def test_serve_starts_the_gateway(served: ServeProcess) -> None:
    assert f"REST (v0.7) on http://127.0.0.1:{served.http_port}/v0.7/" in served.stdout
    page = call(served.http_port, "GET", "/v0.7/recognition/public", key=KEY).json
    assert page["count"] == len(catalog.MODELS)


def test_gateway_alone_in_front_of_a_service(served: ServeProcess, tmp_path: Path) -> None:
    gateway = Gateway(f"127.0.0.1:{served.grpc_port}", tmp_path / "gateway.log")
    try:
        spec = call(gateway.port, "GET", "/v0.7/recognition/public/imagenet-mobilenet-v2/", key=KEY)
        assert spec.status == 200
        assert spec.json["current_version_id"] is not None
        missing_key = call(gateway.port, "GET", "/v0.7/tasks/1/")
        assert (missing_key.status, missing_key.json["reason"]) == (401, "API_KEY_MISSING")
        assert gateway.stop() == 0
    finally:
        gateway.close()


def test_unreachable_service_answers_503(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = Gateway(f"127.0.0.1:{port}", tmp_path / "gateway.log")
    try:
        answer = call(gateway.port, "GET", "/v0.7/recognition/public/", key=KEY)
        assert (answer.status, answer.json["code"]) == (503, "UNAVAILABLE")
        assert answer.headers["content-type"] == "application/json"
        assert int(answer.headers["retry-after"]) >= 1
        assert gateway.stop() == 0
    finally:
        gateway.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl tool makes the test certificate")
def test_https_with_the_service_certificate(tmp_path: Path) -> None:
    """With tls_cert and tls_key, gRPC and REST both speak TLS; the gateway still reaches the gRPC server
    (through its private Unix socket) and plaintext HTTP is refused."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    service = LiveService(tmp_path / "data", public_models=False, tls_cert=cert, tls_key=key).start()
    try:
        context = ssl.create_default_context(cafile=str(cert))
        connection = http.client.HTTPSConnection("127.0.0.1", service.http_port, context=context, timeout=30)
        connection.request("GET", "/v0.7/accounts/me", headers={"X-API-KEY": service.key()})
        answer = connection.getresponse()
        assert answer.status == 200
        assert json.loads(answer.read())["public_recognition_specs_count"] == 0
        connection.close()
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            call(service.http_port, "GET", "/v0.7/accounts/me", key=service.key())
    finally:
        service.stop()


def test_gateway_alone_takes_the_task_wait_and_checks_it() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGHTD_")}
    command = [
        sys.executable,
        "-m",
        "sightd.cli",
        "gateway",
        "--grpc-target",
        "127.0.0.1:1",
        "--http-port",
        "0",
    ]
    refused = subprocess.run(
        [*command, "--rest-task-wait-seconds", "9"], capture_output=True, env=env, timeout=60, check=False
    )
    assert refused.returncode == 2
    assert "above 5 s" in refused.stderr.decode()
