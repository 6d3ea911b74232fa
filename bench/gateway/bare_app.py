"""The bare FastAPI endpoint the gateway's submit is compared with: same body model
validation, no auth, no limits, no backend."""

from __future__ import annotations

import uuid

from fastapi import FastAPI

from picture.gateway.schemas import GenerationCreate

app = FastAPI()


@app.post("/v1/generations", status_code=202)
async def create(body: GenerationCreate) -> dict[str, str]:
    return {"id": str(uuid.uuid4()), "status": "queued", "model": body.model}
