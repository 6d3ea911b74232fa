"""Pure parts of batches, cursors, the dedup key and the ETA."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from picture.common import contracts as c
from picture.common.messaging import QueryFailed
from picture.orchestrator.batches import batch_status
from picture.orchestrator.handlers import decode_cursor, encode_cursor, request_hash

B = c.BatchStatus


@pytest.mark.parametrize(
    ("total", "completed", "failed", "pending", "expected"),
    [
        (3, 0, 0, 3, B.PENDING),
        (3, 0, 0, 2, B.PROCESSING),
        (3, 1, 0, 2, B.PROCESSING),
        (3, 2, 1, 0, B.PARTIAL),
        (3, 3, 0, 0, B.COMPLETED),
        (3, 0, 3, 0, B.FAILED),
        (2, 0, 1, 1, B.PROCESSING),
    ],
)
def test_batch_status(total: int, completed: int, failed: int, pending: int, expected: c.BatchStatus) -> None:
    assert batch_status(total, completed, failed, pending) is expected


def test_a_cursor_round_trips_and_garbage_is_invalid() -> None:
    at, ident = datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC), uuid.uuid4()
    assert decode_cursor(encode_cursor(at, ident)) == (at, ident)
    with pytest.raises(QueryFailed) as refused:
        decode_cursor("not-a-cursor")
    assert refused.value.code is c.QueryErrorCode.INVALID and refused.value.field == "cursor"


MODEL = c.ModelSpec(name="m", display_name="M", replicate_id="o/m")


def _params(**changes: object) -> c.GenerationParameters:
    base: dict[str, object] = {"prompt": "p", "width": 512, "height": 512, "seed": 7}
    return c.GenerationParameters.model_validate({**base, **changes})


def test_the_dedup_key_needs_a_seed_and_covers_every_parameter_and_the_model() -> None:
    assert request_hash(MODEL, _params(seed=None)) is None
    key = request_hash(MODEL, _params())
    assert key == request_hash(MODEL, _params())
    assert key != request_hash(MODEL, _params(seed=8))
    assert key != request_hash(MODEL, _params(width=640))
    assert key != request_hash(MODEL, _params(prompt="q"))
    assert key != request_hash(MODEL.model_copy(update={"version": "v2"}), _params())
