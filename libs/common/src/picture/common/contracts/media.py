"""The media service's contracts: the ingest and delete commands it consumes, the events it
publishes when an ingest stored or failed, and the object query it answers."""

from __future__ import annotations

import uuid
from typing import ClassVar, Literal

from picture.common.contracts.messages import Message
from picture.common.contracts.subjects import Channel, Query
from picture.common.contracts.values import ErrorInfo, StoredObject

__all__ = [
    "DELETE_OBJECTS",
    "INGEST",
    "MEDIA_FAILED",
    "MEDIA_STORED",
    "RESOLVE_OBJECT",
    "DeleteObjectsCommand",
    "IngestCommand",
    "MediaFailedEvent",
    "MediaStoredEvent",
    "ResolveObjectRequest",
    "ResolvedObject",
]

# --------------------------------------------------------------------------------------------
# Ingest and delete
# --------------------------------------------------------------------------------------------


class IngestCommand(Message):
    TYPE: ClassVar[str] = "media.ingest"

    generation_id: uuid.UUID
    user_id: uuid.UUID
    attempt: int
    source_urls: tuple[str, ...]
    max_long_side: int = 2048
    # Provenance written into the stored WebP; None: not known.
    model: str | None = None
    prompt: str | None = None
    seed: int | None = None


class DeleteObjectsCommand(Message):
    TYPE: ClassVar[str] = "media.delete"

    keys: tuple[str, ...]


INGEST = Channel("picture.cmd.media.ingest", IngestCommand)
DELETE_OBJECTS = Channel("picture.cmd.media.delete", DeleteObjectsCommand)


class MediaStoredEvent(Message):
    TYPE: ClassVar[str] = "media.stored"

    generation_id: uuid.UUID
    attempt: int
    objects: tuple[StoredObject, ...]


class MediaFailedEvent(Message):
    TYPE: ClassVar[str] = "media.failed"

    generation_id: uuid.UUID
    attempt: int
    error: ErrorInfo


MEDIA_STORED = Channel("picture.evt.media.stored.{generation_id}", MediaStoredEvent)
MEDIA_FAILED = Channel("picture.evt.media.failed.{generation_id}", MediaFailedEvent)

# --------------------------------------------------------------------------------------------
# Object resolution
# --------------------------------------------------------------------------------------------


class ResolveObjectRequest(Message):
    TYPE: ClassVar[str] = "media.resolve_object"

    key: str
    expires_in_seconds: int = 300


class ResolvedObject(Message):
    """Where to fetch an object's bytes: a short-lived signed URL (redirect the client) or
    an internal URL of the media service (the gateway streams it)."""

    TYPE: ClassVar[str] = "media.resolved_object"

    url: str
    disposition: Literal["redirect", "proxy"]
    content_type: str
    size: int
    etag: str


RESOLVE_OBJECT = Query("picture.q.media.resolve_object", ResolveObjectRequest, ResolvedObject)
