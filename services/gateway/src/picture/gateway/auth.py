"""Supabase access tokens: verification and the authenticated principal.

Legacy HS256 shared secret for now (asymmetric JWKS keys come with the auth issue). Rules from
the security checklist: exp, iat, sub, aud and iss are required; one algorithm family per key;
header-supplied keys (jku, jwk, x5u, x5c) and unknown ``crit`` are refused; tokens whose role is
not "authenticated" (the anon and service_role API keys) are not user tokens.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request

from picture.gateway.errors import Unauthenticated
from picture.gateway.settings import GatewaySettings

FORBIDDEN_HEADERS = frozenset({"jku", "jwk", "x5u", "x5c"})
REQUIRED_CLAIMS = ["exp", "iat", "sub", "aud", "iss"]


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    is_anonymous: bool
    email: str | None
    session_id: str | None


class TokenVerifier:
    def __init__(self, settings: GatewaySettings) -> None:
        if settings.jwt_secret is None:
            raise ValueError("PICTURE_JWT_SECRET is required")
        self._secret = settings.jwt_secret.get_secret_value()
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._leeway = settings.jwt_leeway_seconds
        self._max_bytes = settings.max_token_bytes

    def verify(self, token: str) -> Principal:
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
        if header.get("alg") != "HS256":
            raise Unauthenticated("unsupported token algorithm")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
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
        return Principal(
            user_id=user_id,
            is_anonymous=bool(claims.get("is_anonymous", False)),
            email=claims.get("email") or None,
            session_id=claims.get("session_id"),
        )


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("use an Authorization: Bearer <token> header")
    return token.strip()


def current_principal(request: Request) -> Principal:
    token = _bearer(request)
    if token is None:
        raise Unauthenticated("missing access token")
    verifier: TokenVerifier = request.app.state.verifier
    return verifier.verify(token)


def optional_principal(request: Request) -> Principal | None:
    token = _bearer(request)
    if token is None:
        return None
    verifier: TokenVerifier = request.app.state.verifier
    return verifier.verify(token)


CurrentUser = Annotated[Principal, Depends(current_principal)]
MaybeUser = Annotated[Principal | None, Depends(optional_principal)]
