"""Envelopes and channels: the wire format every service relies on; the package's layout."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import uuid
from types import ModuleType

import pytest
from pydantic import ValidationError

from picture.common import contracts as c
from picture.common.ids import derived_id, uuid7


def test_envelope_round_trip_keeps_id_type_and_data() -> None:
    message = c.ImageCreatedEvent(image_id=uuid.uuid4(), generation_id=uuid.uuid4(), user_id=uuid.uuid4())
    envelope = c.Envelope.wrap(message)
    decoded = c.Envelope.model_validate_json(envelope.model_dump_json())
    assert decoded.id == envelope.id
    assert decoded.type == "image.created" and decoded.schema_version == 1
    assert decoded.open(c.ImageCreatedEvent) == message


def test_opening_as_the_wrong_type_or_a_newer_version_is_refused() -> None:
    message = c.ImageCreatedEvent(image_id=uuid.uuid4(), generation_id=uuid.uuid4(), user_id=uuid.uuid4())
    envelope = c.Envelope.wrap(message)
    with pytest.raises(ValueError, match="expected message type"):
        envelope.open(c.MediaFailedEvent)
    newer = envelope.model_copy(update={"schema_version": 2})
    with pytest.raises(ValueError, match="newer"):
        newer.open(c.ImageCreatedEvent)


def test_messages_forbid_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        c.CancelPredictionCommand.model_validate(
            {"generation_id": str(uuid.uuid4()), "attempt": 1, "user_id": "x"}
        )


def test_channel_subjects_and_wildcards() -> None:
    user, generation = uuid.uuid4(), uuid.uuid4()
    assert c.GENERATION_UPDATED.subject(user_id=user, generation_id=generation) == (
        f"picture.evt.generation.{user}.{generation}"
    )
    assert c.GENERATION_UPDATED.wildcard == "picture.evt.generation.*.*"
    assert c.PREDICT.wildcard == "picture.cmd.adapter.predict"


def test_every_subject_is_declared_once_under_one_prefix() -> None:
    channels = [v for v in vars(c).values() if isinstance(v, c.Channel)]
    queries = [v for v in vars(c).values() if isinstance(v, c.Query)]
    subjects = [ch.subject_pattern for ch in channels] + [q.subject for q in queries]
    assert len(subjects) == len(set(subjects))
    assert all(
        s.startswith("picture.cmd.") or s.startswith("picture.evt.")
        for s in (ch.subject_pattern for ch in channels)
    )
    assert all(q.subject.startswith("picture.q.") for q in queries)
    types = [ch.message_type.TYPE for ch in channels]
    assert len(types) == len(set(types))


MODULES = ("messages", "subjects", "values", "orchestrator", "adapter", "media", "catalog", "gateway")


def contract_module(name: str) -> ModuleType:
    return importlib.import_module(f"picture.common.contracts.{name}")


def defined_names(module: ModuleType) -> set[str]:
    """The public names a module binds at top level (classes, functions and assignments),
    imports aside."""
    names: set[str] = set()
    for node in ast.parse(inspect.getsource(module)).body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if not n.startswith("_")}


def test_the_package_holds_exactly_the_known_modules() -> None:
    assert {m.name for m in pkgutil.iter_modules(c.__path__)} == set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_each_module_exports_every_public_name_it_defines(name: str) -> None:
    module = contract_module(name)
    assert sorted(module.__all__) == sorted(defined_names(module))


def test_the_package_re_exports_every_module_name_once() -> None:
    exported = [n for m in MODULES for n in contract_module(m).__all__]
    assert len(exported) == len(set(exported)), "a name is declared in two modules"
    assert sorted(c.__all__) == sorted(exported)
    for m in MODULES:
        for n in contract_module(m).__all__:
            assert getattr(c, n) is getattr(contract_module(m), n)


def test_uuid7_is_time_ordered_and_version_7() -> None:
    ids = [uuid7() for _ in range(1000)]
    assert all(i.version == 7 for i in ids)
    assert [i.int >> 80 for i in ids] == sorted(i.int >> 80 for i in ids)
    assert len(set(ids)) == 1000


def test_derived_ids_are_stable_and_distinct() -> None:
    g = uuid.uuid4()
    assert derived_id("media.stored", g, 1) == derived_id("media.stored", g, 1)
    assert derived_id("media.stored", g, 1) != derived_id("media.stored", g, 2)
    assert derived_id("media.stored", g, 1) != derived_id("media.failed", g, 1)
