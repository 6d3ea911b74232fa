"""Waiting for a condition instead of sleeping a guessed time, for tests and the devstack.

``await eventually(check)`` calls ``check`` (a function or a coroutine function) until it returns
something truthy and returns that; after ``timeout`` seconds it fails with ``what`` and the last
value seen. ``eventually_sync`` is the same for code off the event loop (threads, sync tests).
A fixed sleep stays only where the behaviour under test is that nothing happens for a while.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

__all__ = ["eventually", "eventually_sync"]


async def eventually(
    check: Callable[[], Awaitable[T]] | Callable[[], T],
    *,
    timeout: float = 10.0,  # noqa: ASYNC109 - a deadline of many checks, not of one call
    interval: float = 0.05,
    what: str = "the condition",
) -> T:
    """The first truthy value of ``check()``, polled every ``interval`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout:g} s (last: {value!r})")
        await asyncio.sleep(interval)


def eventually_sync(
    check: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.05, what: str = "the condition"
) -> T:
    """:func:`eventually` for code that is not on an event loop."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout:g} s (last: {value!r})")
        time.sleep(interval)
