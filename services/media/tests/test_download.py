"""The download policy: addresses, hosts, schemes, redirects, caps, error classes."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest

from picture.media.download import (
    Downloader,
    DownloadPolicy,
    check_address,
    check_url,
    is_public_address,
)
from picture.media.errors import PermanentMediaError, TransientMediaError

HOST = "replicate.delivery"
POLICY = DownloadPolicy(allowed_hosts=frozenset({HOST, "pbxt.replicate.delivery"}), max_bytes=1000)
LOOPBACK_POLICY = DownloadPolicy(
    allowed_hosts=frozenset({"127.0.0.1", "localhost"}), allow_insecure_loopback=True
)


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "127.0.0.1",
        "127.8.8.8",
        "169.254.169.254",
        "0.0.0.0",
        "100.64.0.1",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "::ffff:127.0.0.1",
        "::ffff:10.1.2.3",
        "::ffff:169.254.169.254",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "ff02::1",
        "2002:7f00:1::1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))
    with pytest.raises(PermanentMediaError) as info:
        check_address(address, POLICY)
    assert info.value.code == "address_refused"


@pytest.mark.parametrize("address", ["8.8.8.8", "151.101.1.1", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))
    check_address(address, POLICY)


def test_loopback_only_with_the_insecure_flag() -> None:
    check_address("127.0.0.1", LOOPBACK_POLICY)
    check_address("::1", LOOPBACK_POLICY)
    check_address("::ffff:127.0.0.1", LOOPBACK_POLICY)
    with pytest.raises(PermanentMediaError):
        check_address("10.0.0.1", LOOPBACK_POLICY)
    with pytest.raises(PermanentMediaError):
        check_address("169.254.169.254", LOOPBACK_POLICY)


def test_private_networks_only_with_the_private_flag_and_never_link_local() -> None:
    private = DownloadPolicy(allowed_hosts=frozenset({"replicate-simulator"}), allow_insecure_private=True)
    for address in ("172.18.0.5", "10.1.2.3", "192.168.1.9", "fd00::5", "::ffff:10.0.0.7"):
        check_address(address, private)
        with pytest.raises(PermanentMediaError):
            check_address(address, POLICY)
    for address in ("169.254.169.254", "fe80::1", "::ffff:169.254.169.254", "224.0.0.1"):
        with pytest.raises(PermanentMediaError):
            check_address(address, private)
    assert check_url("http://replicate-simulator/x.png", private).host == "replicate-simulator"


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.replicate.delivery.attacker.com/x.png",
        "https://evilreplicate.delivery/x.png",
        "https://sub.replicate.delivery/x.png",
        "https://attacker.com/replicate.delivery/x.png",
        "https://replicate.delivery@attacker.com/x.png",
    ],
)
def test_hosts_must_match_exactly(url: str) -> None:
    with pytest.raises(PermanentMediaError) as info:
        check_url(url, POLICY)
    assert info.value.code in {"host_not_allowed", "invalid_url"}


def test_allowed_hosts_pass_case_insensitively() -> None:
    assert check_url("https://replicate.delivery/a.png", POLICY).host == HOST
    assert check_url("https://PBXT.Replicate.Delivery/a.png", POLICY).host == "pbxt.replicate.delivery"


@pytest.mark.parametrize(
    "url", ["http://replicate.delivery/a.png", "ftp://replicate.delivery/a.png", "file:///etc/passwd"]
)
def test_only_https_without_the_insecure_flag(url: str) -> None:
    with pytest.raises(PermanentMediaError) as info:
        check_url(url, POLICY)
    assert info.value.code == "scheme_refused"


def test_http_allowed_with_the_insecure_flag() -> None:
    check_url("http://127.0.0.1:9000/a.png", LOOPBACK_POLICY)
    with pytest.raises(PermanentMediaError):
        check_url("ftp://127.0.0.1/a.png", LOOPBACK_POLICY)


def _resolver(*addresses: str):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> Sequence[str]:
        return addresses

    return resolve


def _downloader(handler, policy: DownloadPolicy = POLICY, *addresses: str) -> Downloader:  # type: ignore[no-untyped-def]
    return Downloader(
        policy,
        transport=httpx.MockTransport(handler),
        resolver=_resolver(*(addresses or ("151.101.1.1",))),
    )


async def test_fetch_connects_to_the_checked_address_with_the_host_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"ok")

    downloader = _downloader(handler)
    try:
        assert await downloader.fetch("https://replicate.delivery/a.png") == b"ok"
    finally:
        await downloader.aclose()
    assert seen[0].url.host == "151.101.1.1"
    assert seen[0].headers["host"] == HOST
    assert seen[0].extensions["sni_hostname"] == HOST


async def test_a_host_resolving_to_any_private_address_is_refused() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(200, content=b"ok")

    downloader = _downloader(handler, POLICY, "151.101.1.1", "10.0.0.7")
    try:
        with pytest.raises(PermanentMediaError) as info:
            await downloader.fetch("https://replicate.delivery/a.png")
    finally:
        await downloader.aclose()
    assert info.value.code == "address_refused"
    assert calls == 0


async def test_byte_cap_is_enforced_while_streaming() -> None:
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(100):
            sent += 100
            yield b"x" * 100

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body())  # no Content-Length: streamed

    downloader = _downloader(handler)
    try:
        with pytest.raises(PermanentMediaError) as info:
            await downloader.fetch("https://replicate.delivery/a.png")
    finally:
        await downloader.aclose()
    assert info.value.code == "too_large"
    assert sent <= 1100  # stopped just past the cap, not after the whole body


async def test_declared_length_above_the_cap_is_refused() -> None:
    downloader = _downloader(lambda r: httpx.Response(200, content=b"x" * 5000))
    try:
        with pytest.raises(PermanentMediaError) as info:
            await downloader.fetch("https://replicate.delivery/a.png")
    finally:
        await downloader.aclose()
    assert info.value.code == "too_large"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirects_are_refused(status: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers={"Location": "http://169.254.169.254/"})

    downloader = _downloader(handler)
    try:
        with pytest.raises(PermanentMediaError) as info:
            await downloader.fetch("https://replicate.delivery/a.png")
    finally:
        await downloader.aclose()
    assert info.value.code == "redirect_refused"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, TransientMediaError),
        (503, TransientMediaError),
        (429, TransientMediaError),
        (404, PermanentMediaError),
        (403, PermanentMediaError),
    ],
)
async def test_status_classification(status: int, error: type[Exception]) -> None:
    downloader = _downloader(lambda r: httpx.Response(status))
    try:
        with pytest.raises(error):
            await downloader.fetch("https://replicate.delivery/a.png")
    finally:
        await downloader.aclose()


async def test_connection_errors_are_transient() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    downloader = _downloader(handler)
    try:
        with pytest.raises(TransientMediaError) as info:
            await downloader.fetch("https://replicate.delivery/a.png")
    finally:
        await downloader.aclose()
    assert info.value.code == "download_failed"


async def test_total_time_cap() -> None:
    async def slow() -> AsyncIterator[bytes]:
        import asyncio

        for _ in range(100):
            await asyncio.sleep(0.05)
            yield b"x"

    policy = DownloadPolicy(allowed_hosts=frozenset({HOST}), timeout_seconds=0.2)
    downloader = _downloader(lambda r: httpx.Response(200, content=slow()), policy)
    try:
        with pytest.raises(TransientMediaError) as info:
            await downloader.fetch("https://replicate.delivery/a.png")
    finally:
        await downloader.aclose()
    assert info.value.code == "download_timeout"


async def test_every_attempt_of_a_download_ends_within_the_budget() -> None:
    """Each attempt is cut by the per-attempt timeout and retried, but all of them together
    end at the ingest's download budget: the orchestrator's sweeper waits longer than that."""
    import asyncio
    import time

    from picture.media.handlers import download_with_retries

    attempts = 0

    async def hangs(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(10)
        return httpx.Response(200, content=b"late")

    policy = DownloadPolicy(allowed_hosts=frozenset({HOST}), timeout_seconds=0.3)
    downloader = _downloader(hangs, policy)
    started = time.monotonic()
    try:
        with pytest.raises(TransientMediaError) as info:
            await download_with_retries(
                downloader, "https://replicate.delivery/a.png", (0.05, 0.05, 0.05, 0.05), budget_seconds=0.5
            )
    finally:
        await downloader.aclose()
    assert info.value.code == "download_timeout"
    assert time.monotonic() - started < 0.9
    assert attempts == 2  # 0.3 s, a pause, then the second is cut at the budget
