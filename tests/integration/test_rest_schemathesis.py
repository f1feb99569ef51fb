"""schemathesis (pinned, in a venv of its own) against the gateway's OpenAPI document on a live service: a
bounded number of generated requests per operation, valid and invalid, JSON and multipart. No answer may be
a 5xx, every one must come (30 s each at most: no hang), be JSON and match its documented schema and
status codes. Image URLs in bodies are pointed at a loopback image server (schemathesis_hooks.py)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from integration.harness import image_server
from integration.rest import LiveService, client_python
from sightd.zoo import installed

HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
# Examples per operation and phase: about 2,400 requests in all over the 36 operations.
MAX_EXAMPLES = 10


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, zoo: installed.Zoo) -> Iterator[LiveService]:
    service = LiveService(tmp_path_factory.mktemp("schemathesis"), max_running_tasks=4096).start()
    try:
        yield service
    finally:
        service.stop()


def test_fuzzing_finds_no_server_error(live: LiveService, darknet_data: Path, tmp_path: Path) -> None:
    st = client_python("schemathesis").with_name("st")
    hooks_log = tmp_path / "hooks.log"
    with image_server(darknet_data) as images:
        env = {
            **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")},
            "PYTHONPATH": str(HOOKS.parent),
            "SCHEMATHESIS_HOOKS": HOOKS.stem,
            "SIGHTD_LOCAL_IMAGE": f"{images.url}/dog.jpg",
            "SIGHTD_HOOKS_LOG": str(hooks_log),
        }
        run = subprocess.run(
            [
                str(st),
                "run",
                f"{live.url}/v0.7/openapi.json",
                "--header",
                f"X-API-KEY: {live.key()}",
                "--checks",
                "not_a_server_error,content_type_conformance,response_schema_conformance,"
                "status_code_conformance",
                "--phases",
                "coverage,fuzzing",
                "--max-examples",
                str(MAX_EXAMPLES),
                "--seed",
                "7",
                "--workers",
                "2",
                "--request-timeout",
                "30",
                "--max-redirects",
                "0",
                "--no-color",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert "Tested: 36" in output, output[-3000:]
    assert hooks_log.read_text().count("map_body") > 100
