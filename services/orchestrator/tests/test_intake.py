"""Accepting generations: the dedup key; the group commit (grouping, each caller's own outcome)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from picture.common import contracts as c
from picture.devstack.waiting import eventually
from picture.orchestrator.intake import GenerationWriter, NewGeneration, request_hash

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


def new(prompt: str) -> NewGeneration:
    return NewGeneration(
        uuid.uuid4(), uuid.uuid4(), MODEL, c.GenerationParameters(prompt=prompt, width=64, height=64)
    )


class RecordingWriter(GenerationWriter):
    """The real grouping around a fake transaction: records each group, fails on "bad"."""

    def __init__(self) -> None:
        super().__init__(ctx=None)  # type: ignore[arg-type]  # _commit, the only user, is replaced
        self.groups: list[list[str]] = []
        self.gate = asyncio.Event()

    async def _commit(self, news: list[NewGeneration]) -> list[Any]:
        self.groups.append([n.parameters.prompt for n in news])
        await self.gate.wait()  # the transaction takes time: later writes queue up meanwhile
        if any(n.parameters.prompt == "bad" for n in news):
            raise RuntimeError("constraint violated")
        return [f"view of {n.parameters.prompt}" for n in news]


async def test_writes_arriving_during_a_commit_go_together_in_the_next() -> None:
    writer = RecordingWriter()
    first = asyncio.ensure_future(writer.write(new("a")))
    await eventually(lambda: writer.groups == [["a"]], what='"a" being committed')
    others = [asyncio.ensure_future(writer.write(new(p))) for p in ("b", "c", "d")]
    await asyncio.sleep(0)  # one turn of the loop (a yield, not a wait): b, c and d queue up
    writer.gate.set()
    assert await first == "view of a"
    assert await asyncio.gather(*others) == ["view of b", "view of c", "view of d"]
    assert writer.groups == [["a"], ["b", "c", "d"]]


async def test_a_failing_group_is_retried_one_by_one_and_only_the_culprit_fails() -> None:
    writer = RecordingWriter()
    writer.gate.set()
    writes = [asyncio.ensure_future(writer.write(new(p))) for p in ("x", "bad", "y")]
    results = await asyncio.gather(*writes, return_exceptions=True)
    assert results[0] == "view of x" and results[2] == "view of y"
    assert isinstance(results[1], RuntimeError)
    assert writer.groups == [["x", "bad", "y"], ["x"], ["bad"], ["y"]]


async def test_a_caller_that_gave_up_does_not_break_the_others() -> None:
    writer = RecordingWriter()
    impatient = asyncio.ensure_future(writer.write(new("a")))
    patient = asyncio.ensure_future(writer.write(new("b")))
    await eventually(lambda: writer.groups == [["a", "b"]], what="both writes being committed")
    impatient.cancel()  # a query timeout: the write still happens, the answer goes nowhere
    writer.gate.set()
    assert await patient == "view of b"
    with pytest.raises(asyncio.CancelledError):
        await impatient
    assert writer.groups == [["a", "b"]]
