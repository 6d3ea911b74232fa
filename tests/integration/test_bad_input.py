"""Bad input gets a clear problem+json naming the field, and nothing is enqueued."""

from __future__ import annotations

import json
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


NUL = "\x00"
SURROGATE = "\ud800"  # arrives through JSON's \ud800 escape; UTF-8 cannot encode it


async def _written_by(db: AsyncEngine, user_id: uuid.UUID) -> dict[str, int]:
    async with db.connect() as conn:
        counts = (
            await conn.execute(
                text(
                    "SELECT"
                    " (SELECT count(*) FROM orchestrator.generations WHERE user_id = :u) AS generations,"
                    " (SELECT count(*) FROM orchestrator.batches WHERE user_id = :u) AS batches,"
                    " (SELECT count(*) FROM gateway.charges WHERE user_id = :u) AS charges,"
                    " (SELECT count(*) FROM catalog.prompt_templates WHERE user_id = :u) AS templates,"
                    " (SELECT count(*) FROM catalog.tags WHERE position(:marker in name) > 0) AS tags"
                ),
                {"u": user_id, "marker": "unstorable"},
            )
        ).one()
    return dict(counts._mapping)


BATCH = {"prompts": ["a red fox", "a blue whale"], "shared_settings": {"model": "flux-schnell"}}
TEMPLATE = {"name": "t", "prompt": "a cat"}


IN_BODIES = [
    ("POST", "/v1/generations", {**GOOD, "prompt": "a {} cat"}, "body.prompt"),
    ("POST", "/v1/generations", {**GOOD, "negative_prompt": "no {}"}, "body.negative_prompt"),
    ("POST", "/v1/batches", {**BATCH, "prompts": ["a red fox", "a {} whale"]}, "body.prompts.1"),
    ("POST", "/v1/batches", {**BATCH, "batch_name": "animals {}"}, "body.batch_name"),
    (
        "POST",
        "/v1/batches",
        {**BATCH, "shared_settings": {"model": "flux-schnell", "negative_prompt": "{}"}},
        "body.shared_settings.negative_prompt",
    ),
    (
        "POST",
        "/v1/batches",
        {"prompt": "a {} lighthouse", "count": 2, "shared_settings": {"model": "flux-schnell"}},
        "body.prompt",
    ),
    ("POST", "/v1/tags", {"name": "unstorable {}"}, "body.name"),
    ("POST", f"/v1/images/{uuid.uuid4()}/tags", {"name": "unstorable {}"}, "body.name"),
    ("POST", "/v1/prompt-templates", {**TEMPLATE, "name": "n{}"}, "body.name"),
    ("POST", "/v1/prompt-templates", {**TEMPLATE, "prompt": "a {} cat"}, "body.prompt"),
    ("POST", "/v1/prompt-templates", {**TEMPLATE, "negative_prompt": "{}"}, "body.negative_prompt"),
    ("POST", "/v1/prompt-templates", {**TEMPLATE, "category": "c{}"}, "body.category"),
    ("PATCH", f"/v1/prompt-templates/{uuid.uuid4()}", {"prompt": "a {} dog"}, "body.prompt"),
    ("PATCH", "/v1/me", {"username": "ada{}"}, "body.username"),
]
# A URL carries bytes, and undecodable ones become U+FFFD (storable): only NUL gets through.
IN_URLS = [
    ("GET", "/v1/explore?q=a%20{}", None, "query.q"),
    ("GET", "/v1/images?tag={}", None, "query.tag.0"),
    ("GET", "/v1/images?model=flux{}", None, "query.model"),
    ("GET", "/v1/prompt-templates?category={}", None, "query.category"),
    ("GET", "/v1/models/flux{}", None, "path.name"),
]
CASES = [
    *(
        pytest.param(*case, bad, id=f"{case[0]} {case[1]} {case[3]} {name}")
        for case in IN_BODIES
        for name, bad in (("nul", NUL), ("surrogate", SURROGATE))
    ),
    *(pytest.param(*case, NUL, id=f"{case[0]} {case[1]} {case[3]} nul") for case in IN_URLS),
]


@pytest.mark.parametrize(("method", "path", "body", "field", "bad"), CASES)
async def test_text_postgresql_cannot_store_is_422_naming_the_field_and_nothing_is_written(
    api: httpx.AsyncClient,
    db: AsyncEngine,
    user_id: uuid.UUID,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    field: str,
    bad: str,
) -> None:
    def poison(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace("{}", bad)
        if isinstance(value, list):
            return [poison(v) for v in value]
        if isinstance(value, dict):
            return {k: poison(v) for k, v in value.items()}
        return value

    if body is None:
        response = await api.request(method, path.replace("{}", "%00"))
    else:
        if "negative_prompt" in field:  # a model that takes one, so the text itself is what is judged
            models = (await api.get("/v1/models")).json()["data"]
            model = next(m["name"] for m in models if m["supports_negative_prompt"])
            body = json.loads(json.dumps(body).replace('"flux-schnell"', json.dumps(model)))
        # json.dumps escapes the surrogate as \ud800, as a client's JSON encoder would
        content = json.dumps(poison(body)).encode()
        response = await api.request(
            method, path, content=content, headers={"Content-Type": "application/json"}
        )
    problem = _problem(response, 422)
    assert problem["field"] == field, problem
    assert problem["type"].endswith("/validation-error")
    assert await _written_by(db, user_id) == {
        "generations": 0,
        "batches": 0,
        "charges": 0,
        "templates": 0,
        "tags": 0,
    }
