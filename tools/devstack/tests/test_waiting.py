"""eventually / eventually_sync: the first truthy value, sync or async checks, a clear failure."""

from __future__ import annotations

import itertools

import pytest

from picture.devstack.waiting import eventually, eventually_sync


async def test_returns_the_first_truthy_value_of_a_function_or_a_coroutine() -> None:
    counter = itertools.count()
    assert await eventually(lambda: next(counter) >= 3 and "ready", interval=0) == "ready"
    calls = itertools.count()

    async def rows() -> list[int]:
        return [1, 2] if next(calls) >= 2 else []

    assert await eventually(rows, interval=0) == [1, 2]


async def test_fails_naming_what_and_the_last_value() -> None:
    with pytest.raises(AssertionError, match=r"the profile not reached within 0\.05 s \(last: 0\)"):
        await eventually(lambda: 0, timeout=0.05, interval=0.01, what="the profile")


def test_the_sync_variant() -> None:
    counter = itertools.count()
    assert eventually_sync(lambda: next(counter) == 2, interval=0) is True
    with pytest.raises(AssertionError, match="not reached"):
        eventually_sync(lambda: None, timeout=0.02, interval=0.01)
