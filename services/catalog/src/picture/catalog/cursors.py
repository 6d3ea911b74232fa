"""Keyset cursors: the sort key and ``id`` of a page's last row, opaque to clients.

Pages are keyset (never OFFSET) so equal timestamps keep a stable order and deleting rows
between pages neither repeats nor skips the others. A cursor not made here is INVALID input.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, literal, tuple_

from picture.common import contracts as c
from picture.common.messaging import QueryFailed

NEWEST_FIRST = (datetime, uuid.UUID)  # the kinds of a (created_at, id) cursor


def encode_cursor(*parts: object) -> str:
    values = [
        p.isoformat() if isinstance(p, datetime) else str(p) if isinstance(p, uuid.UUID) else p for p in parts
    ]
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kinds: Sequence[type]) -> list[Any]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(kinds):
            raise ValueError("wrong shape")
        out: list[Any] = []
        for value, kind in zip(raw, kinds, strict=True):
            if kind is datetime:
                out.append(datetime.fromisoformat(value))
            elif kind is uuid.UUID:
                out.append(uuid.UUID(value))
            elif kind is int and isinstance(value, int) and not isinstance(value, bool):
                out.append(value)
            else:
                raise ValueError("wrong value")
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise QueryFailed(c.QueryErrorCode.INVALID, "invalid cursor", field="cursor") from exc
    return out


def after_cursor(columns: Sequence[Any], cursor: str, kinds: Sequence[type]) -> ColumnElement[bool]:
    """Rows that come after the cursor's row in a descending order on ``columns``."""
    values = decode_cursor(cursor, kinds)
    return tuple_(*columns) < tuple_(*(literal(value) for value in values))
