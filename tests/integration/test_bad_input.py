"""Bad input gets a clear problem+json naming the field, and nothing is enqueued."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.devstack.stack import Stack
from picture.devstack.tokens import mint_token


async def _generations_of(db: AsyncEngine, user_id: uuid.UUID) -> int:
    async with db.connect() as conn:
        count: int = (
            await conn.execute(
                text("SELECT count(*) FROM orchestrator.generations WHERE user_id = :u"), {"u": user_id}
            )
        ).scalar_one()
    return count


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert body["title"]
    return body


GOOD = {"model": "flux-schnell", "prompt": "a cat"}


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "missing access token"),
        ({"Authorization": "Bearer not-a-jwt"}, "malformed token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "Bearer"),
    ],
)
async def test_missing_or_malformed_token_is_401(stack: Stack, headers: dict[str, str], detail: str) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url) as client:
        response = await client.post("/v1/generations", json=GOOD, headers=headers)
    body = _problem(response, 401)
    assert detail in body["detail"]
    assert response.headers["www-authenticate"].startswith("Bearer")


def _forge(claims: dict[str, Any], secret: str) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


async def test_invalid_tokens_are_401(stack: Stack, user_id: uuid.UUID, db: AsyncEngine) -> None:
    secret = stack.secrets["PICTURE_JWT_SECRET"]
    valid = jwt.decode(mint_token(secret, user_id), options={"verify_signature": False})
    cases = {
        "wrong secret": mint_token("another-secret-of-sufficient-length-1234567890", user_id),
        "expired": _forge({**valid, "exp": valid["iat"] - 120}, secret),
        "wrong audience": _forge({**valid, "aud": "someone-else"}, secret),
        "wrong issuer": _forge({**valid, "iss": "https://evil.example/auth/v1"}, secret),
        "no exp": _forge({k: v for k, v in valid.items() if k != "exp"}, secret),
        "anon api key": _forge(
            {
                "iss": valid["iss"],
                "role": "anon",
                "iat": valid["iat"],
                "exp": valid["exp"],
                "aud": "authenticated",
                "sub": str(user_id),
            },
            secret,
        ),
        "alg none": jwt.encode(valid, None, algorithm="none"),
    }
    async with httpx.AsyncClient(base_url=stack.gateway_url) as client:
        for name, bad in cases.items():
            response = await client.post(
                "/v1/generations", json=GOOD, headers={"Authorization": f"Bearer {bad}"}
            )
            assert response.status_code == 401, (name, response.text)
    assert await _generations_of(db, user_id) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "no-such-model", "prompt": "a cat"}, "model"),
        ({"model": "flux-schnell", "prompt": ""}, "body.prompt"),
        ({"model": "flux-schnell", "prompt": "   "}, "body.prompt"),
        ({"model": "flux-schnell", "prompt": "x" * 2001}, "body.prompt"),
        ({"model": "flux-schnell", "prompt": "a cat", "width": 100000}, "body.width"),
        ({"model": "flux-schnell", "prompt": "a cat", "height": -5}, "body.height"),
        ({"model": "flux-schnell", "prompt": "a cat", "width": 4096}, "width"),
        ({"model": "flux-schnell", "prompt": "a cat", "steps": 40}, "steps"),
        ({"model": "flux-schnell", "prompt": "a cat", "negative_prompt": "dogs"}, "negative_prompt"),
        ({"model": "flux-schnell", "prompt": "a cat", "seed": -1}, "body.seed"),
        ({"model": "flux-schnell", "prompt": "a cat", "user_id": str(uuid.uuid4())}, "body.user_id"),
        ({"model": "flux-schnell", "prompt": "a cat", "status": "completed"}, "body.status"),
        ({"prompt": "a cat"}, "body.model"),
    ],
)
async def test_invalid_requests_are_422_naming_the_field(
    api: httpx.AsyncClient, db: AsyncEngine, user_id: uuid.UUID, body: dict[str, Any], field: str
) -> None:
    response = await api.post("/v1/generations", json=body)
    problem = _problem(response, 422)
    assert problem["field"] == field
    assert await _generations_of(db, user_id) == 0


async def test_malformed_json_is_422(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/v1/generations", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    _problem(response, 422)
