"""Asymmetric Supabase tokens (ES256, RS256) verified with keys from a JWKS endpoint.

The endpoint is a tiny HTTP server in the test, serving real keys made with ``cryptography``;
it counts requests and can be switched off, so caching, the kid-refresh rate limit and the
behaviour while it is down are observable.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from pydantic import SecretStr

from picture.devstack.tokens import DEV_ISSUER
from picture.devstack.waiting import eventually
from picture.gateway import auth
from picture.gateway.auth import TokenVerifier
from picture.gateway.errors import Unauthenticated, Unavailable
from picture.gateway.settings import GatewaySettings

SECRET = "test-secret-that-is-long-enough-for-hs256-and-hs512-0123456789abcdef"


@dataclass
class Jwks:
    keys: list[dict[str, Any]] = field(default_factory=list)
    up: bool = True
    hits: int = 0
    delay_seconds: float = 0.0


@dataclass
class Keys:
    ec: ec.EllipticCurvePrivateKey
    rsa: rsa.RSAPrivateKey
    other_ec: ec.EllipticCurvePrivateKey


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(
        ec=ec.generate_private_key(ec.SECP256R1()),
        rsa=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        other_ec=ec.generate_private_key(ec.SECP256R1()),
    )


def _jwk(public: Any, kid: str, alg: str) -> dict[str, Any]:
    algo = ECAlgorithm if alg == "ES256" else RSAAlgorithm
    data: dict[str, Any] = json.loads(algo.to_jwk(public))
    data.update(kid=kid, alg=alg, use="sig")
    return data


@pytest.fixture
def jwks(keys: Keys) -> Iterator[tuple[Jwks, str]]:
    state = Jwks(
        keys=[
            _jwk(keys.ec.public_key(), "ec-1", "ES256"),
            _jwk(keys.rsa.public_key(), "rsa-1", "RS256"),
        ]
    )

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits += 1
            time.sleep(state.delay_seconds)  # the server's own thread: a slow endpoint
            if not state.up:
                self.send_response(503)
                self.end_headers()
                return
            body = json.dumps({"keys": state.keys}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/auth/v1/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


def _verifier(
    url: str, *, min_refresh: float = 60.0, cache: float = 600.0, secret: bool = True
) -> TokenVerifier:
    return TokenVerifier(
        GatewaySettings(
            jwt_secret=SecretStr(SECRET) if secret else None,
            jwt_issuer=DEV_ISSUER,
            jwks_url=url,
            jwks_min_refresh_seconds=min_refresh,
            jwks_cache_seconds=cache,
        )
    )


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": str(uuid.uuid4()),
        "aud": "authenticated",
        "iss": DEV_ISSUER,
        "iat": now,
        "exp": now + 600,
        "role": "authenticated",
        "is_anonymous": False,
        "session_id": str(uuid.uuid4()),
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def es256(keys: Keys, kid: str = "ec-1", **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), keys.ec, algorithm="ES256", headers={"kid": kid})


def rs256(keys: Keys, kid: str = "rsa-1", **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), keys.rsa, algorithm="RS256", headers={"kid": kid})


async def test_es256_and_rs256_tokens_are_accepted(keys: Keys, jwks: tuple[Jwks, str]) -> None:
    state, url = jwks
    verifier = _verifier(url)
    user = uuid.uuid4()
    assert (await verifier.verify(es256(keys, sub=str(user)))).user_id == user
    assert (await verifier.verify(rs256(keys, sub=str(user), is_anonymous=True))).is_anonymous
    assert state.hits == 1  # cached
    await verifier.aclose()


def _public_pem(keys: Keys) -> bytes:
    return keys.ec.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hmac_token(secret: bytes) -> str:
    signing_input = (
        _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + _b64(json.dumps(claims()).encode())
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _retagged(token: str, alg: str) -> str:
    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(header + "=="))
    data["alg"] = alg
    return ".".join([_b64(json.dumps(data).encode()), payload, signature])


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        # HS256 "signed" with the public key (the classic algorithm confusion)
        (lambda k: _hmac_token(_public_pem(k)), "invalid token"),
        # an ES256 kid used with RS256 and the other way round: a key has one algorithm
        (lambda k: jwt.encode(claims(), k.rsa, algorithm="RS256", headers={"kid": "ec-1"}), "does not match"),
        (lambda k: jwt.encode(claims(), k.ec, algorithm="ES256", headers={"kid": "rsa-1"}), "does not match"),
        # signed by a key that is not in the JWKS, under a known kid
        (
            lambda k: jwt.encode(claims(), k.other_ec, algorithm="ES256", headers={"kid": "ec-1"}),
            "invalid token",
        ),
        (lambda k: jwt.encode(claims(), k.ec, algorithm="ES256"), "no key id"),
        (lambda k: es256(k, aud="anon"), "invalid token"),
        (lambda k: es256(k, iss="https://evil.supabase.co/auth/v1"), "invalid token"),
        (lambda k: es256(k, exp=int(time.time()) - 3600), "expired"),
        (lambda k: es256(k, nbf=int(time.time()) + 3600), "invalid token"),
        (lambda k: es256(k, iat=int(time.time()) + 3600), "invalid token"),
        (lambda k: es256(k, exp=None), "exp"),
        (lambda k: rs256(k, role="anon"), "not a user access token"),
        (lambda k: rs256(k, role="service_role"), "not a user access token"),
        (lambda k: _retagged(es256(k), "ES384"), "algorithm"),
        (lambda k: _retagged(es256(k), "NONE"), "algorithm"),
        (
            lambda k: jwt.encode(
                claims(),
                k.ec,
                algorithm="ES256",
                headers={"kid": "ec-1", "jwk": _jwk(k.ec.public_key(), "x", "ES256")},
            ),
            "keys",
        ),
        (
            lambda k: jwt.encode(
                claims(), k.ec, algorithm="ES256", headers={"kid": "ec-1", "jku": "https://e.x/j"}
            ),
            "keys",
        ),
        (lambda k: es256(k)[:-10] + "AAAAAAAAAA", "invalid token"),
    ],
)
async def test_asymmetric_rejections(keys: Keys, jwks: tuple[Jwks, str], make: Any, reason: str) -> None:
    _, url = jwks
    verifier = _verifier(url)
    with pytest.raises(Unauthenticated) as raised:
        await verifier.verify(make(keys))
    assert reason in (raised.value.detail or "")
    await verifier.aclose()


async def test_unknown_kids_refetch_at_most_once_per_interval(keys: Keys, jwks: tuple[Jwks, str]) -> None:
    state, url = jwks
    verifier = _verifier(url, min_refresh=60.0)
    await verifier.verify(es256(keys))
    assert state.hits == 1
    for i in range(20):
        with pytest.raises(Unauthenticated, match="unknown signing key"):
            await verifier.verify(es256(keys, kid=f"random-{i}"))
    assert state.hits == 1  # inside the interval: no refetch, however many random kids
    await verifier.aclose()


async def test_a_rotated_key_is_picked_up_on_first_sight(keys: Keys, jwks: tuple[Jwks, str]) -> None:
    state, url = jwks
    verifier = _verifier(url, min_refresh=0.0)
    await verifier.verify(es256(keys))
    state.keys.append(_jwk(keys.other_ec.public_key(), "ec-2", "ES256"))
    token = jwt.encode(claims(), keys.other_ec, algorithm="ES256", headers={"kid": "ec-2"})
    assert (await verifier.verify(token)).user_id
    assert state.hits == 2
    await verifier.aclose()


class ShiftedClock:
    """The ``time`` module as the verifier sees it, with a monotonic clock the test moves on."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.ahead

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


async def test_warm_cache_survives_the_endpoint_going_down(
    keys: Keys, jwks: tuple[Jwks, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    state, url = jwks
    clock = ShiftedClock()
    monkeypatch.setattr(auth, "time", clock)
    verifier = _verifier(url, min_refresh=0.0, cache=60.0)
    await verifier.verify(es256(keys))
    state.up = False
    clock.ahead += 61  # the cache is stale: the refresh is attempted and fails
    assert (await verifier.verify(rs256(keys))).user_id
    assert state.hits >= 2
    with pytest.raises(Unauthenticated, match="unknown signing key"):
        await verifier.verify(es256(keys, kid="rotated-while-down"))
    await verifier.aclose()


async def test_cold_cache_with_the_endpoint_down_is_503(keys: Keys, jwks: tuple[Jwks, str]) -> None:
    state, url = jwks
    state.up = False
    verifier = _verifier(url, min_refresh=60.0)
    with pytest.raises(Unavailable) as raised:
        await verifier.verify(es256(keys))
    assert raised.value.status == 503
    with pytest.raises(Unavailable):
        await verifier.verify(es256(keys))
    assert state.hits == 1  # the retry waits for the interval: no hammering
    # HS256 tokens do not need the JWKS and keep working
    assert await verifier.verify(jwt.encode(claims(), SECRET, algorithm="HS256"))
    await verifier.aclose()


async def test_hs256_is_refused_when_only_jwks_is_configured(keys: Keys, jwks: tuple[Jwks, str]) -> None:
    _, url = jwks
    verifier = _verifier(url, secret=False)
    with pytest.raises(Unauthenticated, match="algorithm"):
        await verifier.verify(jwt.encode(claims(), SECRET, algorithm="HS256"))
    assert await verifier.verify(es256(keys))
    await verifier.aclose()


async def test_a_jwks_never_supplies_an_hmac_secret(keys: Keys, jwks: tuple[Jwks, str]) -> None:
    state, url = jwks
    hmac_secret = b"a-shared-secret-published-in-a-jwks-by-mistake"
    state.keys.append({"kty": "oct", "kid": "hmac", "k": _b64(hmac_secret), "alg": "HS256"})
    verifier = _verifier(url, secret=False)
    token = jwt.encode(claims(), hmac_secret, algorithm="HS256", headers={"kid": "hmac"})
    with pytest.raises(Unauthenticated):
        await verifier.verify(token)
    await verifier.aclose()


async def test_random_kids_during_a_rotation_do_not_starve_the_new_key(
    keys: Keys, jwks: tuple[Jwks, str]
) -> None:
    """A flood of made-up kids while the issuer rotates: the new real key is accepted at once
    (within one refresh interval), and the endpoint is asked a bounded number of times."""
    state, url = jwks
    settings = GatewaySettings(jwt_secret=SecretStr(SECRET), jwt_issuer=DEV_ISSUER, jwks_url=url)
    verifier = TokenVerifier(settings)  # the default refresh interval
    await verifier.verify(es256(keys))
    stop = asyncio.Event()
    refused = 0

    async def flood(worker: int) -> None:
        nonlocal refused
        i = 0
        while not stop.is_set():
            i += 1
            with pytest.raises(Unauthenticated, match="unknown signing key"):
                await verifier.verify(es256(keys, kid=f"random-{worker}-{i}"))
            refused += 1
            await asyncio.sleep(0.005)

    flooders = [asyncio.create_task(flood(w)) for w in range(8)]
    try:
        # every worker has been refused: the flood has spent whatever refresh budget there is
        await eventually(lambda: refused >= 8, what="the flood under way")
        state.keys.append(_jwk(keys.other_ec.public_key(), "ec-rotated", "ES256"))
        token = jwt.encode(claims(), keys.other_ec, algorithm="ES256", headers={"kid": "ec-rotated"})
        started = time.monotonic()
        assert (await verifier.verify(token)).user_id
        waited = time.monotonic() - started
        assert (await verifier.verify(token)).user_id  # known now: no wait, no fetch
    finally:
        stop.set()
        await asyncio.gather(*flooders)
    assert refused >= 8
    assert waited < 5.0
    # however many kids, the endpoint is asked at most about once per refresh interval
    assert state.hits <= 10, state.hits
    await verifier.aclose()


async def test_a_slow_jwks_endpoint_does_not_block_the_event_loop(keys: Keys, jwks: tuple[Jwks, str]) -> None:
    """While the key set is fetched from an endpoint that takes a second, the event loop keeps
    running other work, and concurrent first tokens share the one fetch."""
    state, url = jwks
    state.delay_seconds = 1.0
    verifier = _verifier(url)
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(ticker())
    try:
        started = time.monotonic()
        users = await asyncio.gather(*(verifier.verify(es256(keys)) for _ in range(5)))
        took = time.monotonic() - started
    finally:
        ticking.cancel()
    assert len(users) == 5
    assert took >= 1.0
    assert state.hits == 1  # one fetch for all of them
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert len(ticks) > 30, len(ticks)  # about 100 in the second the fetch took
    assert max(gaps) < 0.5, max(gaps)  # never stalled for the fetch
    await verifier.aclose()


async def test_a_kid_first_seen_while_the_endpoint_is_down_is_found_once_it_is_back(
    keys: Keys, jwks: tuple[Jwks, str]
) -> None:
    state, url = jwks
    verifier = _verifier(url, min_refresh=0.0)
    await verifier.verify(es256(keys))
    state.up = False
    state.keys.append(_jwk(keys.other_ec.public_key(), "ec-2", "ES256"))
    token = jwt.encode(claims(), keys.other_ec, algorithm="ES256", headers={"kid": "ec-2"})
    with pytest.raises(Unauthenticated, match="unknown signing key"):
        await verifier.verify(token)
    state.up = True
    assert (await verifier.verify(token)).user_id  # not remembered as unknown by a failed fetch
    await verifier.aclose()
