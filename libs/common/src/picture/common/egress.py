"""Outgoing requests to a host someone else named (a client's webhook URL, a provider's image
URL): which addresses may be reached, and how to reach exactly the one that was checked.

A name is resolved once, every address it answers is vetted, and the connection goes to the
vetted address itself: the name stays in the ``Host`` header and in TLS SNI (so certificates
are still verified against it), and a second DNS answer (rebinding) cannot swap in another
address between the check and the request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> every address of host, as text
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]


def is_public_address(address: IPAddress) -> bool:
    """True for a globally routable unicast address (IPv4-mapped IPv6 judged as its IPv4)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public_address(address.ipv4_mapped)
        if address.sixtofour is not None or address.teredo is not None:
            return False  # tunnels embedding another address: never needed for our requests
        if address.is_site_local:
            return False
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
        or not address.is_global
    )


async def system_resolver(host: str, port: int) -> Sequence[str]:
    """Every address of ``host`` (A and AAAA) from the system resolver, off the event loop.
    Raises OSError (``socket.gaierror``) when the name does not resolve."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def pinned_request(
    client: httpx.AsyncClient, method: str, url: httpx.URL, address: IPAddress, **kwargs: Any
) -> httpx.Request:
    """A request for ``url`` that connects to ``address``, with the URL's host name kept in
    the Host header and in TLS SNI."""
    headers = httpx.Headers(kwargs.pop("headers", None))
    headers["Host"] = url.netloc.decode("ascii")
    return client.build_request(
        method,
        url.copy_with(host=str(address)),
        headers=headers,
        extensions={"sni_hostname": url.host},
        **kwargs,
    )
