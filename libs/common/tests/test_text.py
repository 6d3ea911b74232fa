"""Text PostgreSQL can store: NUL and unpaired surrogates are refused, everything else kept."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field, ValidationError

from picture.common import contracts as c
from picture.common.text import StorableText, UnstorableText, storable, unstorable_path, unstorable_reason


class Body(BaseModel):
    title: StorableText = Field(max_length=20)
    tags: list[StorableText] = []


@pytest.mark.parametrize(
    "value",
    ["", "a cat", "emoji \U0001f408 and CJK 猫", "tab\tnewline\n", "\\u0000 written out", "\ufffd", "\x7f"],
)
def test_storable_text_is_kept_as_it_is(value: str) -> None:
    assert unstorable_reason(value) is None
    assert Body(title=value[:20]).title == value[:20]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("a\x00b", "NUL"),
        ("\x00", "NUL"),
        ("a\ud800b", "U+D800"),
        ("\udfff", "U+DFFF"),
    ],
)
def test_nul_and_unpaired_surrogates_are_refused_naming_the_field(value: str, reason: str) -> None:
    assert reason in (unstorable_reason(value) or "")
    with pytest.raises(ValidationError) as raised:
        Body(title="ok", tags=["fine", value])
    error = raised.value.errors()[0]
    assert error["loc"] == ("tags", 1)
    assert error["type"] == "unstorable_text"
    assert reason in error["msg"]


def test_unstorable_path_names_the_first_culprit_in_a_payload() -> None:
    assert unstorable_path({"a": 1, "b": [None, {"c": "x"}]}) is None
    assert unstorable_path({"a": 1, "b": [None, {"c": "x\x00"}]}) == "b.1.c"
    assert unstorable_path({"k\x00": "v"}) == "k\x00"
    assert unstorable_path("\x00") == ""


def test_the_bus_envelope_refuses_nul_but_not_its_spelling() -> None:
    written_out = c.Envelope.wrap(c.TagRequest(name="a \\u0000 b"))  # a backslash, then u0000
    raw = written_out.model_dump_json().encode()
    assert b"\\\\u0000" in raw
    assert c.Envelope.decode(raw).open(c.TagRequest).name == "a \\u0000 b"
    bad = c.Envelope.wrap(c.TagRequest(name="a\x00b")).model_dump_json().encode()
    with pytest.raises(UnstorableText) as raised:
        c.Envelope.decode(bad)
    assert raised.value.field == "name"


def test_storable_replaces_what_cannot_be_stored() -> None:
    assert storable("a\x00b\ud800c") == "a\ufffdb\ufffdc"
    assert storable("fine \U0001f408") == "fine \U0001f408"
