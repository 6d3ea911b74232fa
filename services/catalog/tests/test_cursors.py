"""Keyset cursors: opaque, round-trip exactly, and refuse anything not made by the catalog."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from picture.catalog.cursors import decode_cursor, encode_cursor
from picture.common.contracts import QueryErrorCode
from picture.common.messaging import QueryFailed


def test_cursor_round_trip() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    image_id = uuid.uuid4()
    assert decode_cursor(encode_cursor(at, image_id), (datetime, uuid.UUID)) == [at, image_id]
    assert decode_cursor(encode_cursor(42, at, image_id), (int, datetime, uuid.UUID)) == [42, at, image_id]


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "",
        encode_cursor(1, 2),
        encode_cursor("2026-01-01T00:00:00+00:00"),
        encode_cursor("yesterday", str(uuid.uuid4())),
        encode_cursor("2026-01-01T00:00:00+00:00", "not-a-uuid"),
    ],
)
def test_bad_cursors_are_invalid_input(cursor: str) -> None:
    with pytest.raises(QueryFailed) as failed:
        decode_cursor(cursor, (datetime, uuid.UUID))
    assert (failed.value.code, failed.value.field) == (QueryErrorCode.INVALID, "cursor")


def test_popular_cursor_wants_an_integer() -> None:
    with pytest.raises(QueryFailed):
        decode_cursor(
            encode_cursor(True, "2026-01-01T00:00:00+00:00", str(uuid.uuid4())), (int, datetime, uuid.UUID)
        )
