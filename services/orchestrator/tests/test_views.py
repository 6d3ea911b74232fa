"""Pure parts of the views: page cursors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from picture.common import contracts as c
from picture.common.messaging import QueryFailed
from picture.orchestrator.views import decode_cursor, encode_cursor


def test_a_cursor_round_trips_and_garbage_is_invalid() -> None:
    at, ident = datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC), uuid.uuid4()
    assert decode_cursor(encode_cursor(at, ident)) == (at, ident)
    with pytest.raises(QueryFailed) as refused:
        decode_cursor("not-a-cursor")
    assert refused.value.code is c.QueryErrorCode.INVALID and refused.value.field == "cursor"
