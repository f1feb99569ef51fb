"""Fetching URL inputs, guarded against server-side request forgery.

The host name is resolved once; every address it resolves to must be public (not loopback, private,
link-local, shared, reserved, multicast or unspecified) unless the configuration allows it by host name,
address or network. The connection then goes to a checked address, never to a second resolution of the
name, so a DNS answer that changes between the check and the connection (DNS rebinding) cannot reach an
internal address; TLS still verifies the certificate against the host name. Redirects are checked the
same way. The whole fetch has one deadline, the name's resolution included, and the body a size limit.
Each tenant has at most ``per_tenant`` fetches in flight, so that one key's slow URLs cannot hold every
fetching thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from sightd import __version__
from sightd.app.errors import BadRequestError, ResourceExhaustedError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_REDIRECTS = {301, 302, 303, 307, 308}
_CHUNK = 64 * 1024
# getaddrinfo cannot be interrupted: it runs on these threads while the fetch waits at most until its
# deadline. A resolver that hangs holds a thread for the system resolver's own timeout.
_RESOLVER = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sightd-resolve")


@dataclass(frozen=True)
class FetchPolicy:
    """Limits of URL fetching. ``allowed_hosts``: host names, addresses or CIDR networks that may be
    reached although they are not public (``127.0.0.1``, ``10.0.0.0/8``, ``images.internal``)."""

    allowed_hosts: tuple[str, ...] = ()
    timeout: float = 10.0
    max_bytes: int = 32 << 20
    max_redirects: int = 3

    def allowed_networks(self) -> list[IPNetwork]:
        networks: list[IPNetwork] = []
        for entry in self.allowed_hosts:
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                continue  # a host name
        return networks

    def allowed_names(self) -> set[str]:
        return {entry.lower().rstrip(".") for entry in self.allowed_hosts}


class FetchError(BadRequestError):
    """The URL was refused or could not be fetched (INVALID_ARGUMENT: the input is at fault)."""


# IPv6 ranges that carry an IPv4 address in their last 32 bits and reach it through a translator or a
# tunnel where one exists (NAT64, SIIT, the deprecated IPv4-compatible form), so that ::7f00:1 or
# 64:ff9b::a00:1 may lead to 127.0.0.1 or 10.0.0.1. Python counts them as global.
_EMBEDDING_IPV4 = tuple(
    ipaddress.IPv6Network(network) for network in ("64:ff9b::/96", "::ffff:0:0:0/96", "::/96")
)
# RFC 8215's local-use NAT64 prefix, which places the IPv4 address anywhere: never public.
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")


def _normalise(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in network for network in _EMBEDDING_IPV4):
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """True for globally routable unicast addresses only (and, for IPv6 addresses that embed an IPv4
    address, only when that address is public too)."""
    address = _normalise(address)
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if address in _LOCAL_NAT64:
            return False
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public(embedded)
    return True


def check_addresses(
    host: str, addresses: Sequence[IPAddress], policy: FetchPolicy, field: str = "source"
) -> list[IPAddress]:
    """The addresses a fetch may connect to; refuses the host when any address is not allowed, since a
    client choosing among them would otherwise reach the forbidden one."""
    if not addresses:
        raise FetchError.of(field, f"{host} has no address", reason="URL_FETCH_FAILED")
    if host.lower().rstrip(".") in policy.allowed_names():
        return list(addresses)
    networks = policy.allowed_networks()
    for address in addresses:
        if is_public(address) or any(_normalise(address) in network for network in networks):
            continue
        raise FetchError.of(
            field,
            f"{host} resolves to {address}, a non-public address that the server does not allow "
            "(see allow_url_host in docs/configuration.md)",
            reason="URL_REFUSED",
        )
    return list(addresses)


def _resolve(host: str, port: int, deadline: _Deadline) -> list[IPAddress]:
    field = deadline.field
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return [literal]
    resolution = _RESOLVER.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = resolution.result(timeout=deadline.remaining())
    except concurrent.futures.TimeoutError:
        resolution.cancel()
        raise FetchError.of(
            field, f"resolving {host} took longer than allowed", reason="URL_TIMEOUT"
        ) from None
    except (socket.gaierror, UnicodeError):
        raise FetchError.of(field, f"cannot resolve {host}", reason="URL_FETCH_FAILED") from None
    seen: dict[str, IPAddress] = {}
    for _family, _type, _proto, _name, sockaddr in infos:
        text = str(sockaddr[0]).split("%", 1)[0]
        seen.setdefault(text, ipaddress.ip_address(text))
    return list(seen.values())


class _Deadline:
    """The one deadline of a fetch. Socket timeouts bound each read, not their sum (a server trickling a
    byte now and then never trips them), so when the deadline passes a timer shuts the socket of the
    connection in use down, which ends whatever read is blocked on it."""

    def __init__(self, seconds: float, field: str) -> None:
        self.end = time.monotonic() + seconds
        self.field = field
        self.expired = False
        self._lock = threading.Lock()
        self._connection: http.client.HTTPConnection | None = None
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0 or self.expired:
            raise FetchError.of(self.field, "fetching the URL took longer than allowed", reason="URL_TIMEOUT")
        return left

    def watch(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            self._connection = connection

    def close(self, connection: http.client.HTTPConnection) -> None:
        """Closes a connection; under the lock, so that the timer never shuts down a reused descriptor."""
        with self._lock:
            if self._connection is connection:
                self._connection = None
            connection.close()

    def cancel(self) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sock = self._connection.sock if self._connection is not None else None
            if sock is not None:
                # socket.socket's own shutdown: SSLSocket.shutdown would also drop the TLS object under
                # the reading thread, which then fails with ValueError instead of an OSError.
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _connect(
    scheme: str, host: str, port: int, address: IPAddress, timeout: float
) -> http.client.HTTPConnection:
    connection: http.client.HTTPConnection
    if scheme == "https":
        connection = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)

    # http.client would resolve `host` again: connect to the checked address instead (the Host header and
    # TLS server name stay the host name).
    def pinned(_address: object, timeout: float | None = None, source: object = None) -> socket.socket:
        return socket.create_connection((str(address), port), timeout)

    connection._create_connection = pinned  # type: ignore[attr-defined]
    return connection


def _read_body(
    response: http.client.HTTPResponse,
    connection: http.client.HTTPConnection,
    deadline: _Deadline,
    policy: FetchPolicy,
) -> bytes:
    field = deadline.field
    length = response.getheader("Content-Length")
    if length is not None and length.isdigit() and int(length) > policy.max_bytes:
        raise FetchError.of(
            field, f"the image is larger than the limit of {policy.max_bytes} bytes", reason="IMAGE_TOO_LARGE"
        )
    parts: list[bytes] = []
    size = 0
    while True:
        if connection.sock is not None:
            connection.sock.settimeout(deadline.remaining())
        chunk = response.read(_CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > policy.max_bytes:
            raise FetchError.of(
                field,
                f"the image is larger than the limit of {policy.max_bytes} bytes",
                reason="IMAGE_TOO_LARGE",
            )
        parts.append(chunk)
    deadline.remaining()  # a body cut short by the deadline ends like a complete one
    return b"".join(parts)


def fetch_blocking(url: str, policy: FetchPolicy, field: str = "source") -> bytes:
    """Fetches a URL under the policy (blocking; :class:`UrlFetcher` runs it on worker threads)."""
    deadline = _Deadline(policy.timeout, field)
    try:
        return _fetch(url, policy, field, deadline)
    finally:
        deadline.cancel()


def _fetch(url: str, policy: FetchPolicy, field: str, deadline: _Deadline) -> bytes:
    for _hop in range(policy.max_redirects + 1):
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in {"http", "https"} or not parts.hostname:
            raise FetchError.of(
                field, "only http and https URLs with a host are fetched", reason="URL_REFUSED"
            )
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise FetchError.of(field, "the URL has an invalid port", reason="URL_REFUSED") from None
        host = parts.hostname
        addresses = check_addresses(host, _resolve(host, port, deadline), policy, field)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        response, connection = _request(scheme, host, port, addresses, path, deadline=deadline)
        try:
            if response.status in _REDIRECTS:
                location = response.getheader("Location")
                if not location:
                    raise FetchError.of(
                        field, f"HTTP {response.status} without a Location", reason="URL_FETCH_FAILED"
                    )
                url = urljoin(url, location)
                continue
            if not 200 <= response.status < 300:
                raise FetchError.of(
                    field,
                    f"the server answered HTTP {response.status} {response.reason}",
                    reason="URL_FETCH_FAILED",
                )
            return _read_body(response, connection, deadline, policy)
        except (OSError, http.client.HTTPException) as error:
            raise _transport_error(error, deadline) from None
        finally:
            deadline.close(connection)
    raise FetchError.of(field, f"more than {policy.max_redirects} redirects", reason="URL_FETCH_FAILED")


def _request(
    scheme: str, host: str, port: int, addresses: Iterable[IPAddress], path: str, *, deadline: _Deadline
) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
    last: BaseException | None = None
    for address in addresses:
        connection = _connect(scheme, host, port, address, deadline.remaining())
        deadline.watch(connection)
        try:
            connection.request(
                "GET", path, headers={"User-Agent": f"sightd/{__version__}", "Accept": "image/*, */*;q=0.5"}
            )
            if connection.sock is not None:
                connection.sock.settimeout(deadline.remaining())
            return connection.getresponse(), connection
        except (OSError, http.client.HTTPException) as error:
            deadline.close(connection)
            last = error
            if isinstance(error, ssl.SSLError | TimeoutError):
                break  # another address of the same host will not do better
    assert last is not None
    raise _transport_error(last, deadline)


def _transport_error(error: BaseException, deadline: _Deadline) -> FetchError:
    if isinstance(error, TimeoutError) or deadline.expired or time.monotonic() >= deadline.end:
        return FetchError.of(
            deadline.field, "fetching the URL took longer than allowed", reason="URL_TIMEOUT"
        )
    return FetchError.of(deadline.field, f"cannot fetch the URL: {error}", reason="URL_FETCH_FAILED")


class UrlFetcher:
    """Fetches URL inputs on worker threads, so that slow servers never block the event loop nor take the
    inference threads. A tenant has at most ``per_tenant`` fetches in flight; more wait for a free slot
    at most ``slot_wait`` seconds (the fetch timeout by default), then are refused with
    RESOURCE_EXHAUSTED."""

    def __init__(
        self,
        policy: FetchPolicy,
        *,
        workers: int = 16,
        per_tenant: int = 4,
        slot_wait: float | None = None,
    ) -> None:
        self.policy = policy
        self.per_tenant = per_tenant
        self.slot_wait = policy.timeout if slot_wait is None else slot_wait
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sightd-fetch")
        # tenant -> (its slots, number of fetches holding or waiting for one); dropped at zero.
        self._slots: dict[int | None, tuple[asyncio.Semaphore, int]] = {}

    async def fetch(self, url: str, field: str = "source", *, tenant: int | None = None) -> bytes:
        semaphore, users = self._slots.get(tenant) or (asyncio.Semaphore(self.per_tenant), 0)
        self._slots[tenant] = (semaphore, users + 1)
        try:
            try:
                await asyncio.wait_for(semaphore.acquire(), self.slot_wait)
            except TimeoutError:
                raise ResourceExhaustedError(
                    f"{field}: too many URL inputs of this API key are being fetched at once "
                    f"(at most {self.per_tenant}); retry later",
                    reason="URL_FETCH_LIMIT",
                    retry_after=1.0,
                ) from None
            try:
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(self._executor, fetch_blocking, url, self.policy, field)
            finally:
                semaphore.release()
        finally:
            semaphore, users = self._slots[tenant]
            if users <= 1:
                del self._slots[tenant]
            else:
                self._slots[tenant] = (semaphore, users - 1)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
