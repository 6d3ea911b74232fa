"""The bare FastAPI endpoint the gateway's submit is compared with: same body model
validation, no auth, no limits, no backend."""

from __future__ import annotations

import uuid

from fastapi import FastAPI

from picture.gateway.schemas import GenerationCreate, GenerationOut

app = FastAPI()


@app.post("/v1/generations", status_code=202)
async def create(body: GenerationCreate) -> dict[str, str]:
    return {"id": str(uuid.uuid4()), "status": "queued", "model": body.model}


# The GET it is compared with: one stored representation of a finished generation (the same
# response model as the gateway's), returned through FastAPI's validation and serialisation.
_stored: dict[str, GenerationOut] = {}


@app.put("/v1/generations/{generation_id}", status_code=204)
async def store(generation_id: uuid.UUID, body: GenerationOut) -> None:
    _stored[str(generation_id)] = body


@app.get("/v1/generations/{generation_id}", response_model=GenerationOut)
async def read(generation_id: uuid.UUID) -> GenerationOut:
    return _stored[str(generation_id)]
