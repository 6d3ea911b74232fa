"""The message base, the envelope every message travels in, and the reply frame of queries."""

from __future__ import annotations

import builtins
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from picture.common.ids import uuid7
from picture.common.text import UnstorableText, unstorable_path

__all__ = [
    "Envelope",
    "ImportReply",
    "M",
    "Message",
    "QueryError",
    "QueryErrorCode",
    "QueryReply",
    "R",
]

# --------------------------------------------------------------------------------------------
# Message base and envelope
# --------------------------------------------------------------------------------------------


class Message(BaseModel):
    """Base of every message body. ``TYPE`` names it on the wire; bump ``SCHEMA_VERSION``
    on a breaking change (consumers refuse versions newer than they know)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    TYPE: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int] = 1


M = TypeVar("M", bound=Message)
R = TypeVar("R", bound=Message)


class Envelope(BaseModel):
    """What travels on NATS around every message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: uuid.UUID = Field(default_factory=uuid7)
    type: str
    schema_version: int
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    data: dict[str, Any]

    @classmethod
    def wrap(cls, message: Message, *, id: uuid.UUID | None = None) -> Envelope:
        return cls(
            id=id or uuid7(),
            type=message.TYPE,
            schema_version=message.SCHEMA_VERSION,
            data=message.model_dump(mode="json"),
        )

    @classmethod
    def decode(cls, raw: bytes) -> Envelope:
        """Parse an envelope received from the bus. Text PostgreSQL cannot store is refused
        (:class:`UnstorableText` naming the field): only NUL can arrive, as a ``\\u0000``
        escape (JSON parsing refuses unpaired surrogates), so the payload is searched only then."""
        envelope = cls.model_validate_json(raw)
        if b"\\u0000" in raw:
            where = unstorable_path(envelope.data)
            if where is not None:
                raise UnstorableText(where, "text must not contain the NUL character (U+0000)")
        return envelope

    def open(self, message_type: builtins.type[M]) -> M:
        if self.type != message_type.TYPE:
            raise ValueError(f"expected message type {message_type.TYPE}, got {self.type}")
        if self.schema_version > message_type.SCHEMA_VERSION:
            raise ValueError(
                f"{self.type} schema version {self.schema_version} is newer than "
                f"{message_type.SCHEMA_VERSION}"
            )
        return message_type.model_validate(self.data)


# --------------------------------------------------------------------------------------------
# Query replies: either data or a typed error
# --------------------------------------------------------------------------------------------


class QueryErrorCode(StrEnum):
    NOT_FOUND = "not_found"
    INVALID = "invalid"
    CONFLICT = "conflict"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


class QueryError(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: QueryErrorCode
    message: str
    field: str | None = None


class QueryReply(BaseModel):
    """The reply frame of every query: either ``data`` or ``error``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ok: bool
    data: dict[str, Any] | None = None
    error: QueryError | None = None


class ImportReply(Message):
    """The answer to every import query of the old product's records (picture-import):
    whether the record was written now (False: it was there already and nothing changed)."""

    TYPE: ClassVar[str] = "import.reply"

    created: bool
