"""Downloading a source image: only from allowed hosts, public addresses, with caps.

The policy (``DownloadPolicy``) is checked before any byte is sent:

- scheme ``https`` (``http`` only with ``allow_insecure_loopback``, development and tests);
- the host is one of the allowed host names, compared exactly (no suffix matching);
- every address the host resolves to is public (IPv4, IPv6, IPv4-mapped IPv6); with
  ``allow_insecure_loopback`` loopback addresses are accepted too.

The request then goes to the checked address itself (:mod:`picture.common.egress`: the host
name stays in the ``Host`` header and in TLS SNI, so certificates are verified against it): a
second DNS answer cannot swap in another address. Redirects are not followed (a 3xx is a
permanent error); the body is streamed with a byte cap, and the whole download has a time cap.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from picture.common import egress
from picture.common.egress import IPAddress, Resolver, is_public_address, pinned_request
from picture.media.errors import MediaError, PermanentMediaError, TransientMediaError
from picture.media.metrics import DOWNLOAD_BYTES, DOWNLOADS


@dataclass(frozen=True)
class DownloadPolicy:
    allowed_hosts: frozenset[str]
    allow_insecure_loopback: bool = False
    # Development only (docker compose: the simulator sits on a private container network).
    allow_insecure_private: bool = False
    max_bytes: int = 50 * 1024 * 1024
    timeout_seconds: float = 60.0


def _is_loopback(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _is_private(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_private and not address.ipv4_mapped.is_link_local
    return address.is_private and not address.is_link_local  # never cloud metadata (169.254/16)


def check_address(address: str, policy: DownloadPolicy) -> IPAddress:
    """Parse and vet one resolved address; raise PermanentMediaError when it is refused."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError as exc:
        raise PermanentMediaError("address_refused", f"not an IP address: {address!r}") from exc
    if is_public_address(ip):
        return ip
    if policy.allow_insecure_loopback and _is_loopback(ip):
        return ip
    if policy.allow_insecure_private and _is_private(ip):
        return ip
    raise PermanentMediaError("address_refused", "the source host resolves to a non-public address")


def check_url(url: str, policy: DownloadPolicy) -> httpx.URL:
    """Scheme and host checks (no DNS). Returns the parsed URL."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise PermanentMediaError("invalid_url", "the source URL is not valid") from exc
    insecure = policy.allow_insecure_loopback or policy.allow_insecure_private
    allowed_schemes = {"https", "http"} if insecure else {"https"}
    if parsed.scheme not in allowed_schemes:
        raise PermanentMediaError("scheme_refused", f"source URL scheme {parsed.scheme!r} refused")
    if parsed.userinfo:
        raise PermanentMediaError("invalid_url", "source URLs may not carry credentials")
    host = parsed.host.lower().rstrip(".")
    if not host or host not in policy.allowed_hosts:
        raise PermanentMediaError("host_not_allowed", f"source host {host!r} is not allowed")
    return parsed


async def system_resolver(host: str, port: int) -> Sequence[str]:
    """Every address of ``host`` (A and AAAA), via the system resolver off the event loop."""
    try:
        return await egress.system_resolver(host, port)
    except socket.gaierror as exc:
        raise TransientMediaError("dns_failed", f"could not resolve {host!r}") from exc


class Downloader:
    """Streams one source URL into memory under the policy. One instance (one httpx client)
    per process; ``transport`` and ``resolver`` are swapped in tests."""

    def __init__(
        self,
        policy: DownloadPolicy,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.policy = policy
        self.resolver = resolver
        self.client = httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,
            timeout=httpx.Timeout(min(30.0, policy.timeout_seconds)),
            headers={
                "User-Agent": "picture-media/1",
                "Accept": "image/*",
                "Accept-Encoding": "identity",
            },
            trust_env=False,  # no proxies from the environment: the address check is ours
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def resolve(self, url: httpx.URL) -> IPAddress:
        """Check every resolved address of the URL's host; return the one to connect to."""
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            literal: IPAddress | None = ipaddress.ip_address(url.host)
        except ValueError:
            literal = None
        addresses = [str(literal)] if literal is not None else list(await self.resolver(url.host, port))
        if not addresses:
            raise TransientMediaError("dns_failed", f"{url.host!r} has no addresses")
        checked = [check_address(a, self.policy) for a in addresses]
        return checked[0]

    async def fetch(self, url: str) -> bytes:
        """The body of ``url``, or a MediaError saying why not."""
        try:
            async with asyncio.timeout(self.policy.timeout_seconds):
                body = await self._fetch(url)
        except MediaError as exc:
            DOWNLOADS.labels(exc.kind.value).inc()
            raise
        except TimeoutError as exc:
            DOWNLOADS.labels("transient").inc()
            raise TransientMediaError("download_timeout", "the source download timed out") from exc
        DOWNLOADS.labels("ok").inc()
        return body

    async def _fetch(self, url: str) -> bytes:
        parsed = check_url(url, self.policy)
        address = await self.resolve(parsed)
        request = pinned_request(self.client, "GET", parsed, address)
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise TransientMediaError("download_timeout", "the source download timed out") from exc
        except httpx.TransportError as exc:
            raise TransientMediaError("download_failed", f"could not fetch the source: {exc}") from exc
        try:
            return await self._read(response)
        except httpx.TimeoutException as exc:
            raise TransientMediaError("download_timeout", "the source download timed out") from exc
        except httpx.TransportError as exc:
            raise TransientMediaError("download_failed", f"the source download broke: {exc}") from exc
        finally:
            await response.aclose()

    async def _read(self, response: httpx.Response) -> bytes:
        status = response.status_code
        if 300 <= status < 400:
            raise PermanentMediaError("redirect_refused", f"the source answered a redirect ({status})")
        if status == 429 or status >= 500:
            raise TransientMediaError("download_failed", f"the source answered {status}")
        if status != 200:
            raise PermanentMediaError("download_refused", f"the source answered {status}")
        cap = self.policy.max_bytes
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise PermanentMediaError("too_large", f"the source is larger than {cap} bytes")
        chunks: list[bytes] = []
        received = 0
        async for chunk in response.aiter_bytes():
            received += len(chunk)
            DOWNLOAD_BYTES.inc(len(chunk))
            if received > cap:
                raise PermanentMediaError("too_large", f"the source is larger than {cap} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
