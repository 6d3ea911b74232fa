"""Text PostgreSQL can store.

PostgreSQL's text type refuses the NUL character (U+0000), and UTF-8 has no encoding for an
unpaired surrogate (U+D800 to U+DFFF), which a JSON ``\\ud800`` escape still carries into a
Python str. Either one, written to the database, fails the whole statement: refused where
text comes in, it is the client's error (422 naming the field) instead of a failure of ours.

- Request models and parameters declare free text with :data:`Storable` last in its
  ``Annotated`` metadata, after its own constraints (which so keep their messages and their
  JSON schema): ``Annotated[str, Field(max_length=200), Storable]``; :data:`StorableText`
  is a text without constraints.
- Text from a provider that we keep anyway (an error message) goes through :func:`storable`.
- Messages on the bus: :func:`unstorable_path` names the first such text in a decoded payload
  (the bus refuses the message; see ``Envelope.decode``).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_reason(value: str) -> str | None:
    """Why ``value`` cannot be stored, or None when it can."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "text must not contain the NUL character (U+0000)"
    return f"text must not contain an unpaired surrogate (U+{ord(found.group()):04X})"


def storable(value: str) -> str:
    """``value`` with every character PostgreSQL cannot store replaced by U+FFFD: for text we
    keep but did not get from a client (a provider's error message)."""
    return _UNSTORABLE.sub("\ufffd", value)


def check_storable(value: object) -> object:
    if isinstance(value, str):
        reason = unstorable_reason(value)
        if reason is not None:
            raise PydanticCustomError("unstorable_text", reason)
    return value


Storable = AfterValidator(check_storable)
StorableText = Annotated[str, Storable]


class UnstorableText(ValueError):
    """A payload holds text that cannot be stored; ``field`` is its dotted path."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


def unstorable_path(value: object, path: str = "") -> str | None:
    """The dotted path of the first string (or key) in a JSON-like value that cannot be stored,
    or None. ``""`` is the value itself."""
    if isinstance(value, str):
        return path if _UNSTORABLE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _UNSTORABLE.search(key):
                return where
            found = unstorable_path(item, where)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = unstorable_path(item, f"{path}.{index}" if path else str(index))
            if found is not None:
                return found
    return None
