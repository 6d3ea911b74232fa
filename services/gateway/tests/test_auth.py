"""Token verification: what is accepted, and every rejection case we can build offline."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from pydantic import SecretStr

from picture.devstack.tokens import DEV_ISSUER, mint_token
from picture.gateway.auth import TokenVerifier
from picture.gateway.errors import Unauthenticated
from picture.gateway.settings import GatewaySettings

SECRET = "test-secret-that-is-long-enough-for-hs256-and-hs512-0123456789abcdef"


@pytest.fixture
def verifier() -> TokenVerifier:
    return TokenVerifier(GatewaySettings(jwt_secret=SecretStr(SECRET), jwt_issuer=DEV_ISSUER))


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "sub": str(uuid.uuid4()),
        "aud": "authenticated",
        "iss": DEV_ISSUER,
        "iat": now,
        "exp": now + 600,
        "role": "authenticated",
        "is_anonymous": False,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


async def test_a_supabase_token_gives_its_user(verifier: TokenVerifier) -> None:
    user = uuid.uuid4()
    principal = await verifier.verify(mint_token(SECRET, user, is_anonymous=True))
    assert principal.user_id == user
    assert principal.is_anonymous


def _unsigned(header: dict[str, Any], payload: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(payload)}."


@pytest.mark.parametrize(
    ("token_factory", "reason"),
    [
        (lambda: jwt.encode(claims(), "wrong-secret-wrong-secret-wrong-secret!"), "invalid token"),
        (lambda: jwt.encode(claims(exp=int(time.time()) - 3600), SECRET), "expired"),
        (lambda: jwt.encode(claims(iat=None), SECRET), "iat"),
        (lambda: jwt.encode(claims(exp=None), SECRET), "exp"),
        (lambda: jwt.encode(claims(sub=None), SECRET), "sub"),
        (lambda: jwt.encode(claims(aud="anon"), SECRET), "invalid token"),
        (lambda: jwt.encode(claims(iss="https://evil.example/auth/v1"), SECRET), "invalid token"),
        (lambda: jwt.encode(claims(nbf=int(time.time()) + 3600), SECRET), "invalid token"),
        (lambda: jwt.encode(claims(role="service_role"), SECRET), "not a user access token"),
        (lambda: jwt.encode(claims(role="anon"), SECRET), "not a user access token"),
        (lambda: jwt.encode(claims(sub="not-a-uuid"), SECRET), "not a user id"),
        (lambda: _unsigned({"alg": "none", "typ": "JWT"}, claims()), "algorithm"),
        (lambda: _unsigned({"alg": "NoNe", "typ": "JWT"}, claims()), "algorithm"),
        (lambda: jwt.encode(claims(), SECRET, headers={"jku": "https://evil.example/jwks"}), "keys"),
        (lambda: jwt.encode(claims(), SECRET, headers={"jwk": {"kty": "oct", "k": "AA"}}), "keys"),
        (lambda: jwt.encode(claims(), SECRET, headers={"x5u": "https://evil.example/cert"}), "keys"),
        (
            lambda: jwt.encode(claims(), SECRET, headers={"crit": ["exp"]}),
            "malformed",
        ),  # PyJWT refuses unknown crit itself
        (lambda: jwt.encode(claims(), SECRET, algorithm="HS512"), "algorithm"),
        (lambda: "a" * 9000, "too large"),
        (lambda: "not.a.token", "malformed"),
    ],
)
async def test_rejections(verifier: TokenVerifier, token_factory: Any, reason: str) -> None:
    with pytest.raises(Unauthenticated) as raised:
        await verifier.verify(token_factory())
    assert reason in (raised.value.detail or "")
    assert raised.value.status == 401


async def test_a_verified_token_is_taken_on_trust_until_the_cache_time(
    verifier: TokenVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = mint_token(SECRET, uuid.uuid4())
    decodes = 0
    real_decode = jwt.decode

    def counting_decode(*args: Any, **kwargs: Any) -> Any:
        nonlocal decodes
        decodes += 1
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)
    first = await verifier.verify(token)
    assert await verifier.verify(token) == first
    assert decodes == 1
    later = time.time() + verifier.verified.ttl_seconds + 1
    monkeypatch.setattr(time, "time", lambda: later)
    assert await verifier.verify(token) == first
    assert decodes == 2  # the cache time passed: verified again


async def test_a_cached_token_stops_counting_when_it_expires(
    verifier: TokenVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = int(time.time())
    token = jwt.encode(claims(exp=now + 5), SECRET)
    principal = await verifier.verify(token)
    assert verifier.verified.get(token) == principal
    monkeypatch.setattr(time, "time", lambda: now + 6)  # past exp, well inside the cache time
    assert verifier.verified.get(token) is None  # the next request verifies it in full


async def test_a_refused_token_is_not_remembered(verifier: TokenVerifier) -> None:
    token = jwt.encode(claims(), "wrong-secret-wrong-secret-wrong-secret!")
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            await verifier.verify(token)
    assert verifier.verified.get(token) is None
