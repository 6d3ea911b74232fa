"""Problem responses for database trouble: transient ones are 503 with Retry-After."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as DatabaseTimeout

from picture.common.problems import install_problem_handlers


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/pool-exhausted")
    async def pool_exhausted() -> None:
        raise DatabaseTimeout("QueuePool limit of size 10 overflow 0 reached")

    @app.get("/connection-lost")
    async def connection_lost() -> None:
        raise OperationalError("SELECT 1", {}, ConnectionResetError(), connection_invalidated=True)

    @app.get("/bad-sql")
    async def bad_sql() -> None:
        raise OperationalError("SELEC 1", {}, ValueError("syntax"))

    return app


async def _get(path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path)


async def test_an_exhausted_pool_is_503_with_retry_after() -> None:
    response = await _get("/pool-exhausted")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    assert response.json()["type"].endswith("/unavailable")


async def test_a_lost_connection_is_503() -> None:
    response = await _get("/connection-lost")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"


async def test_other_database_errors_stay_500() -> None:
    response = await _get("/bad-sql")
    assert response.status_code == 500
    assert response.json()["type"].endswith("/internal-error")
