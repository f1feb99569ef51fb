"""URL inputs: fetched from a real HTTP server on 127.0.0.1, allowed explicitly; refused otherwise."""

from __future__ import annotations

import asyncio
import http.server
import ipaddress
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from sightd.sources.fetch import FetchError, FetchPolicy, UrlFetcher, check_addresses, fetch_blocking

IMAGE = os.urandom(200_000)
ALLOW_LOOPBACK = FetchPolicy(allowed_hosts=("127.0.0.1",), timeout=5.0, max_bytes=1 << 20)


class _Handler(http.server.BaseHTTPRequestHandler):
    hang = threading.Event()

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        if self.path == "/image.jpg":
            self._send(200, IMAGE)
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(IMAGE), 50_000):
                piece = IMAGE[start : start + 50_000]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/redirect":
            self._redirect(f"http://127.0.0.1:{port}/image.jpg")
        elif self.path == "/relative-redirect":
            self._redirect("/image.jpg")
        elif self.path == "/redirect-to-metadata":
            self._redirect("http://169.254.169.254/latest/meta-data/")
        elif self.path == "/loop":
            self._redirect("/loop")
        elif self.path == "/slow":
            self.hang.wait(30)
        else:
            self._send(404, b"missing")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    _Handler.hang.set()
    httpd.shutdown()
    httpd.server_close()


def test_allowed_loopback_server_is_fetched(server: str) -> None:
    assert fetch_blocking(f"{server}/image.jpg", ALLOW_LOOPBACK) == IMAGE
    assert fetch_blocking(f"{server}/chunked", ALLOW_LOOPBACK) == IMAGE


async def test_async_fetcher_runs_off_the_event_loop(server: str) -> None:
    fetcher = UrlFetcher(ALLOW_LOOPBACK, workers=2)
    try:
        assert await fetcher.fetch(f"{server}/image.jpg") == IMAGE
    finally:
        fetcher.close()


def test_loopback_is_refused_unless_allowed(server: str) -> None:
    with pytest.raises(FetchError) as refused:
        fetch_blocking(f"{server}/image.jpg", FetchPolicy(), field="inputs[0].image.source")
    assert refused.value.reason == "URL_REFUSED"
    assert refused.value.violations[0].field == "inputs[0].image.source"


def test_allowed_network_admits_the_whole_range(server: str) -> None:
    assert fetch_blocking(f"{server}/image.jpg", FetchPolicy(allowed_hosts=("127.0.0.0/8",))) == IMAGE


def test_every_address_of_a_name_is_checked(server: str) -> None:
    # "localhost" resolves to 127.0.0.1 and, on most machines, ::1 too: allowing 127.0.0.1 alone must not
    # let the name through when one of its addresses is not allowed.
    port = server.rsplit(":", 1)[1]
    only_v6 = FetchPolicy(allowed_hosts=("::1",))
    with pytest.raises(FetchError) as refused:
        fetch_blocking(f"http://localhost:{port}/image.jpg", only_v6)
    assert refused.value.reason == "URL_REFUSED"
    # Allowed by name: any of its addresses.
    assert (
        fetch_blocking(f"http://localhost:{port}/image.jpg", FetchPolicy(allowed_hosts=("localhost",)))
        == IMAGE
    )


def test_redirects_are_followed_and_checked_again(server: str) -> None:
    assert fetch_blocking(f"{server}/redirect", ALLOW_LOOPBACK) == IMAGE
    assert fetch_blocking(f"{server}/relative-redirect", ALLOW_LOOPBACK) == IMAGE
    with pytest.raises(FetchError) as refused:
        fetch_blocking(f"{server}/redirect-to-metadata", ALLOW_LOOPBACK)
    assert refused.value.reason == "URL_REFUSED"
    assert "169.254.169.254" in refused.value.message
    with pytest.raises(FetchError, match="redirects"):
        fetch_blocking(f"{server}/loop", ALLOW_LOOPBACK)


def test_size_limit_applies_with_and_without_content_length(server: str) -> None:
    small = FetchPolicy(allowed_hosts=("127.0.0.1",), max_bytes=len(IMAGE) - 1)
    for path in ("/image.jpg", "/chunked"):
        with pytest.raises(FetchError) as refused:
            fetch_blocking(f"{server}{path}", small)
        assert refused.value.reason == "IMAGE_TOO_LARGE"


def test_http_errors_and_timeouts_are_reported(server: str) -> None:
    with pytest.raises(FetchError, match="404") as missing:
        fetch_blocking(f"{server}/nothing", ALLOW_LOOPBACK)
    assert missing.value.reason == "URL_FETCH_FAILED"
    impatient = FetchPolicy(allowed_hosts=("127.0.0.1",), timeout=0.3)
    with pytest.raises(FetchError) as slow:
        fetch_blocking(f"{server}/slow", impatient)
    assert slow.value.reason == "URL_TIMEOUT"


class _Trickle:
    """A server that trickles the headers or the body of its answer a few bytes at a time, each well
    within a socket timeout, and records whether the client hung up before the end."""

    def __init__(self, trickled: str) -> None:
        padding = "".join(f"X-Padding-{i}: {'x' * 24}\r\n" for i in range(20))
        self.head = f"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n{padding}\r\n".encode()
        self.body = b"x" * 100
        self.trickled = trickled
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/image.jpg"
        self.cut_short = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _send(self, connection: socket.socket, data: bytes, slowly: bool) -> None:
        step = 8 if slowly else len(data)
        for start in range(0, len(data), step):
            connection.sendall(data[start : start + step])
            if slowly:
                time.sleep(0.05)

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            connection.recv(65536)
            try:
                self._send(connection, self.head, self.trickled == "headers")
                self._send(connection, self.body, self.trickled == "body")
            except OSError:
                self.cut_short.set()

    def close(self) -> None:
        self.thread.join()
        self.listener.close()


@pytest.mark.parametrize("trickled", ["headers", "body"])
def test_a_trickling_server_cannot_outlast_the_deadline(trickled: str) -> None:
    """Socket timeouts bound each read, not the fetch: a server sending a few bytes now and then (here
    for about 5 s) must still be cut off at url_timeout, else a few such URLs hold every fetch worker."""
    server = _Trickle(trickled)
    try:
        with pytest.raises(FetchError) as slow:
            fetch_blocking(server.url, FetchPolicy(allowed_hosts=("127.0.0.1",), timeout=0.5))
        assert slow.value.reason == "URL_TIMEOUT"
    finally:
        server.close()
    assert server.cut_short.is_set()


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/x.jpg", "http:///nohost", "gopher://127.0.0.1/"]
)
def test_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(FetchError) as refused:
        fetch_blocking(url, ALLOW_LOOPBACK)
    assert refused.value.reason == "URL_REFUSED"


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "224.0.0.1",
        # IPv6 forms that embed a private IPv4 address, reached through NAT64, SIIT or 6to4
        "64:ff9b::127.0.0.1",
        "64:ff9b::10.0.0.1",
        "64:ff9b:1::a00:1",
        "::ffff:0:a00:1",
        "::127.0.0.1",
        "::169.254.169.254",
        "2002:a00:1::1",
        "2002:7f00:1::",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    with pytest.raises(FetchError):
        check_addresses("example.test", [ipaddress.ip_address(address)], FetchPolicy())


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "2606:2800:220:1::", "64:ff9b::93.184.216.34", "2002:5db8:d822::1"]
)
def test_public_addresses_are_accepted(address: str) -> None:
    parsed = ipaddress.ip_address(address)
    assert check_addresses("example.test", [parsed], FetchPolicy()) == [parsed]


def test_a_name_with_one_private_address_among_public_ones_is_refused() -> None:
    public, private = ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.0.0.5")
    assert check_addresses("example.test", [public], FetchPolicy()) == [public]
    with pytest.raises(FetchError):
        check_addresses("example.test", [public, private], FetchPolicy())
    allowed = FetchPolicy(allowed_hosts=("10.0.0.0/24",))
    assert check_addresses("example.test", [public, private], allowed) == [public, private]


def test_a_resolver_that_does_not_answer_cannot_outlast_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An unresponsive DNS server, as getaddrinfo experiences one: the call blocks past the fetch's deadline.
    released = threading.Event()

    def unanswered(*args: object, **kwargs: object) -> list[object]:
        released.wait(10)
        raise socket.gaierror("no answer")

    monkeypatch.setattr(socket, "getaddrinfo", unanswered)
    started = time.monotonic()
    try:
        with pytest.raises(FetchError) as slow:
            fetch_blocking("http://images.example/dog.jpg", FetchPolicy(timeout=0.3))
    finally:
        released.set()
    assert slow.value.reason == "URL_TIMEOUT"
    assert "resolving images.example" in slow.value.message
    assert time.monotonic() - started < 5


async def test_a_tenant_has_a_bounded_number_of_fetches_in_flight(server: str) -> None:
    from sightd.app.errors import ResourceExhaustedError

    # Slow fetches hold their slot for 2 s; a fetch without one waits 0.2 s.
    policy = FetchPolicy(allowed_hosts=("127.0.0.1",), timeout=2.0, max_bytes=1 << 20)
    fetcher = UrlFetcher(policy, workers=8, per_tenant=2, slot_wait=0.2)
    try:
        outcomes = await asyncio.gather(
            *(fetcher.fetch(f"{server}/slow", tenant=1) for _ in range(3)),
            fetcher.fetch(f"{server}/image.jpg", tenant=2),
            return_exceptions=True,
        )
    finally:
        fetcher.close()
    # Two of tenant 1's fetches ran (and hit the deadline); the third never got a slot; tenant 2 was not
    # held back by tenant 1's slow URLs.
    reasons = sorted(getattr(outcome, "reason", "") for outcome in outcomes[:3])
    assert reasons == ["URL_FETCH_LIMIT", "URL_TIMEOUT", "URL_TIMEOUT"]
    limited = next(o for o in outcomes[:3] if getattr(o, "reason", "") == "URL_FETCH_LIMIT")
    assert isinstance(limited, ResourceExhaustedError)
    assert limited.retry_after == 1.0
    assert outcomes[3] == IMAGE
    assert fetcher._slots == {}
