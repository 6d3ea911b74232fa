"""Supabase access tokens: verification and the authenticated principal.

Two kinds of keys, never mixed: the legacy HS256 shared secret, and asymmetric keys (ES256,
RS256) from the project's JWKS URL. The token's ``alg`` picks the family; an asymmetric token
is verified only with the JWKS key of its ``kid`` and only with that key's own algorithm (an
EC key never verifies RS256, a JWKS never supplies an HMAC secret), and HS256 only with the
secret. Rules from the security checklist: exp, iat, sub, aud and iss are required;
header-supplied keys (jku, jwk, x5u, x5c) and unknown ``crit`` are refused; ``alg: none`` in any
casing is refused; tokens whose role is not "authenticated" (anon and service_role API keys)
are not user tokens.

The JWKS is fetched with httpx (async: the event loop is never blocked), cached, refetched
after ``jwks_cache_seconds`` or when an unknown ``kid`` arrives, at most once per
``jwks_min_refresh_seconds`` (random kids cannot hammer the endpoint, nor starve a newly
rotated key: see :class:`KeySet`). While the endpoint is down, a warm cache keeps working
(stale keys are used); with a cold cache the answer is 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import jwt
from fastapi import Depends, Request
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from picture.common import contracts as c
from picture.common.intake import declares_body, request_header
from picture.common.problems import ProblemError, problem_response
from picture.common.text import unstorable_reason
from picture.gateway.errors import Unauthenticated, Unavailable
from picture.gateway.settings import GatewaySettings
from picture.gateway.state import gateway_state

log = logging.getLogger(__name__)

FORBIDDEN_HEADERS = frozenset({"jku", "jwk", "x5u", "x5c"})
REQUIRED_CLAIMS = ["exp", "iat", "sub", "aud", "iss"]
ASYMMETRIC = {"ES256": "EC", "RS256": "RSA"}  # alg -> the only key type that may verify it
MAX_JWKS_BYTES = 256 * 1024
# A token with a kid we do not hold waits this long at most for the next JWKS fetch.
MAX_KID_WAIT_SECONDS = 5.0
MAX_UNKNOWN_KIDS = 10_000
# Request state key of the principal TokenBeforeBody verified.
VERIFIED_PRINCIPAL = "picture.verified_principal"


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    is_anonymous: bool
    email: str | None
    session_id: str | None


class KeySet:
    """The JWKS of the token issuer, cached; refreshed without blocking the event loop.

    Fetches are single-flight (concurrent callers share one) and at most one per
    ``min_refresh_seconds``. A token with a kid we do not hold waits for the next fetch (at most
    ``MAX_KID_WAIT_SECONDS``) instead of being refused because another kid spent the last
    one: a flood of made-up kids costs one fetch per interval, and a key the issuer has just
    rotated in is accepted within one interval. A kid the latest fetch did not have is refused
    at once until the next successful fetch.
    """

    def __init__(
        self,
        url: str,
        *,
        cache_seconds: float,
        min_refresh_seconds: float,
        timeout_seconds: float,
    ) -> None:
        self.url = url
        self._cache_seconds = cache_seconds
        self._min_refresh = min_refresh_seconds
        self._timeout = timeout_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._unknown: OrderedDict[str, None] = OrderedDict()
        self._fetched_at: float | None = None
        self._last_attempt: float | None = None
        self._inflight: asyncio.Task[bool] | None = None
        self._client: httpx.AsyncClient | None = None
        self.fetches = 0  # how many times the endpoint was asked (observable in tests)

    async def aclose(self) -> None:
        if self._inflight is not None:
            self._inflight.cancel()
            with contextlib.suppress(BaseException):
                await self._inflight
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _fetch(self) -> None:
        self._last_attempt = time.monotonic()
        self.fetches += 1
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
        response = await self._client.get(self.url, headers={"Accept": "application/json"})
        response.raise_for_status()
        if len(response.content) > MAX_JWKS_BYTES:
            raise ValueError("JWKS document too large")
        keys: dict[str, jwt.PyJWK] = {}
        for entry in response.json().get("keys", []):
            if not isinstance(entry, dict) or entry.get("kty") not in ("EC", "RSA"):
                continue  # never an HMAC secret from a JWKS
            if entry.get("use", "sig") != "sig" or not isinstance(entry.get("kid"), str):
                continue
            try:
                key = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                continue
            if ASYMMETRIC.get(key.algorithm_name) != entry["kty"]:
                continue
            keys[entry["kid"]] = key
        self._keys = keys
        self._unknown.clear()
        self._fetched_at = time.monotonic()

    async def _fetch_after(self, delay: float) -> bool:
        try:
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                await self._fetch()
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("JWKS fetch from %s failed: %s", self.url, exc)
                return False
            return True
        finally:
            self._inflight = None

    async def _refresh(self, max_wait: float) -> bool:
        """Join the fetch in flight, or start one (now, or when the interval since the last
        attempt has passed if that is within ``max_wait``). False: no fetch, or it failed."""
        if self._inflight is None:
            delay = 0.0
            if self._last_attempt is not None:
                delay = self._last_attempt + self._min_refresh - time.monotonic()
            if delay > max_wait:
                return False
            self._inflight = asyncio.ensure_future(self._fetch_after(delay))
        return await asyncio.shield(self._inflight)

    async def key(self, kid: str) -> jwt.PyJWK:
        now = time.monotonic()
        if self._fetched_at is None or now - self._fetched_at > self._cache_seconds:
            ok = await self._refresh(max_wait=0.0)
            if self._fetched_at is None:
                # Cold cache and no key set: we cannot tell a good token from a bad one.
                raise Unavailable("the token signing keys cannot be fetched right now")
            if not ok and kid in self._keys:
                log.info("JWKS endpoint down; using the cached keys")
        if kid not in self._keys and kid not in self._unknown:
            fetched = await self._refresh(max_wait=MAX_KID_WAIT_SECONDS)
            if fetched and kid not in self._keys:  # not after a failed fetch: it may be there
                self._unknown[kid] = None
                while len(self._unknown) > MAX_UNKNOWN_KIDS:
                    self._unknown.popitem(last=False)
        found = self._keys.get(kid)
        if found is None:
            raise Unauthenticated("unknown signing key")
        return found


class VerifiedTokens:
    """Tokens verified recently, with their principal: a client sends the same token with
    every request (a poll a second), and verifying it (base64 checks, signature, claims) was
    a tenth of the gateway's CPU. An entry lives until the token expires or ``ttl_seconds``
    pass, whichever is first (a signing key withdrawn from the JWKS stops counting within
    that time); refusals are never kept."""

    def __init__(self, ttl_seconds: float = 60.0, size: int = 10_000) -> None:
        self.ttl_seconds = ttl_seconds
        self.size = size
        self._entries: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    def get(self, token: str) -> Principal | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        if entry[0] <= time.time():
            del self._entries[token]
            return None
        return entry[1]

    def keep(self, token: str, principal: Principal, expires_at: float) -> None:
        self._entries[token] = (min(expires_at, time.time() + self.ttl_seconds), principal)
        self._entries.move_to_end(token)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


class TokenVerifier:
    def __init__(self, settings: GatewaySettings) -> None:
        if settings.jwt_secret is None and not settings.jwks_url:
            raise ValueError("PICTURE_JWT_SECRET or PICTURE_JWKS_URL is required")
        self._secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._leeway = settings.jwt_leeway_seconds
        self._max_bytes = settings.max_token_bytes
        self.keys = (
            KeySet(
                settings.jwks_url,
                cache_seconds=settings.jwks_cache_seconds,
                min_refresh_seconds=settings.jwks_min_refresh_seconds,
                timeout_seconds=settings.jwks_timeout_seconds,
            )
            if settings.jwks_url
            else None
        )
        self.verified = VerifiedTokens(settings.verified_token_cache_seconds)

    async def aclose(self) -> None:
        if self.keys is not None:
            await self.keys.aclose()

    async def verify(self, token: str) -> Principal:
        known = self.verified.get(token)
        if known is not None:
            return known
        if len(token) > self._max_bytes:
            raise Unauthenticated("token too large")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated("malformed token") from exc
        if FORBIDDEN_HEADERS & header.keys():
            raise Unauthenticated("token headers may not carry keys")
        if header.get("crit"):
            raise Unauthenticated("unsupported critical header")
        alg = header.get("alg")
        key: Any
        if alg == "HS256" and self._secret is not None:
            key = self._secret
        elif alg in ASYMMETRIC and self.keys is not None:
            kid = header.get("kid")
            if not isinstance(kid, str) or not kid or len(kid) > 256:
                raise Unauthenticated("token has no key id")
            jwk = await self.keys.key(kid)
            if jwk.algorithm_name != alg:
                raise Unauthenticated("token algorithm does not match its key")
            key = jwk
        else:
            raise Unauthenticated("unsupported token algorithm")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("token expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid token: {exc}") from exc
        if claims.get("role") != "authenticated":
            raise Unauthenticated("not a user access token")
        try:
            user_id = uuid.UUID(str(claims["sub"]))
        except ValueError as exc:
            raise Unauthenticated("token subject is not a user id") from exc
        email = claims.get("email")
        session = claims.get("session_id")
        principal = Principal(
            user_id=user_id,
            is_anonymous=claims.get("is_anonymous") is True,
            # a claim we cannot store is no email at all (it is only ever shown and recorded)
            email=email if isinstance(email, str) and email and unstorable_reason(email) is None else None,
            session_id=session if isinstance(session, str) else None,
        )
        self.verified.keep(token, principal, float(claims["exp"]))
        return principal


def bearer_token(header: str | None) -> str | None:
    """The token of an Authorization header; None without one, 401 for another scheme."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("use an Authorization: Bearer <token> header")
    return token.strip()


def _bearer(request: Request) -> str | None:
    return bearer_token(request.headers.get("authorization"))


class TokenBeforeBody:
    """A request that announces a body must carry a valid access token, checked before a byte
    of the body is read (FastAPI reads a route's body before its dependencies run): an
    unauthenticated client cannot make us receive and parse large bodies. ``open_paths`` are
    authenticated otherwise (a signed webhook). The verified principal is kept in the
    request's state, so the route's dependency does not verify the token again."""

    def __init__(
        self, app: ASGIApp, *, verifier: TokenVerifier, open_paths: frozenset[str] = frozenset()
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths or not declares_body(scope["headers"]):
            await self.app(scope, receive, send)
            return
        try:
            token = bearer_token(request_header(scope, b"authorization"))
            if token is None:
                raise Unauthenticated("missing access token")
            principal = await self.verifier.verify(token)
        except ProblemError as exc:
            response = problem_response(
                None, exc.status, exc.slug, exc.title, exc.detail, headers=exc.headers
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})[VERIFIED_PRINCIPAL] = principal
        await self.app(scope, receive, send)


async def admit(request: HTTPConnection, principal: Principal) -> None:
    """Per-user request rate and first sight (the catalog is asked to create the profile)."""
    state = gateway_state(request)
    limiter = state.limiter
    try:
        created = await limiter.see_user(principal.user_id, principal.email, principal.is_anonymous)
    except Unavailable:
        created = False  # the limits store is down: reads go on; reservations fail closed
    await limiter.hit(principal.user_id, principal.is_anonymous)
    if created:
        try:
            await state.backend.bus.publish(
                c.ENSURE_PROFILE,
                c.EnsureProfileCommand(user_id=principal.user_id, email=principal.email),
                message_id=uuid.uuid5(uuid.NAMESPACE_URL, f"ensure-profile:{principal.user_id}"),
            )
        except Exception as exc:  # the catalog also creates the profile on first GET
            log.warning("publishing ensure_profile failed: %s", exc)


async def authenticate(request: HTTPConnection, token: str) -> Principal:
    principal: Principal | None = request.scope.get("state", {}).get(VERIFIED_PRINCIPAL)
    if principal is None:
        principal = await gateway_state(request).verifier.verify(token)
    await admit(request, principal)
    return principal


async def current_principal(request: Request) -> Principal:
    token = _bearer(request)
    if token is None:
        raise Unauthenticated("missing access token")
    return await authenticate(request, token)


async def optional_principal(request: Request) -> Principal | None:
    token = _bearer(request)
    if token is None:
        return None
    return await authenticate(request, token)


CurrentUser = Annotated[Principal, Depends(current_principal)]
MaybeUser = Annotated[Principal | None, Depends(optional_principal)]
