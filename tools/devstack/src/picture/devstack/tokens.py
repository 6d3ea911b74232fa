"""Supabase-shaped access tokens (HS256) for development and tests."""

from __future__ import annotations

import time
import uuid

import jwt

DEV_ISSUER = "http://127.0.0.1:54321/auth/v1"  # what a local Supabase (supabase start) issues


def mint_token(
    secret: str,
    user_id: uuid.UUID | None = None,
    *,
    issuer: str = DEV_ISSUER,
    ttl_seconds: int = 3600,
    is_anonymous: bool = False,
    email: str | None = None,
) -> str:
    now = int(time.time())
    sub = str(user_id or uuid.uuid4())
    claims = {
        "sub": sub,
        "aud": "authenticated",
        "iss": issuer,
        "iat": now,
        "exp": now + ttl_seconds,
        "role": "authenticated",
        "aal": "aal1",
        "session_id": str(uuid.uuid4()),
        "is_anonymous": is_anonymous,
        "email": email or ("" if is_anonymous else f"user-{sub[:8]}@example.com"),
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": {},
    }
    return jwt.encode(claims, secret, algorithm="HS256", headers={"typ": "JWT"})
