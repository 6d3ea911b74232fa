"""The batch status from its items' counts."""

from __future__ import annotations

import pytest

from picture.common import contracts as c
from picture.orchestrator.batches import batch_status

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
