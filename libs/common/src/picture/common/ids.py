"""UUIDv7: time-ordered identifiers (RFC 9562), used for rows and message ids.

Python 3.11's uuid module has no uuid7; this is the RFC's layout: 48 bits of unix
milliseconds, version, 74 random bits. Time order keeps B-tree inserts local.
"""

from __future__ import annotations

import os
import time
import uuid


def uuid7() -> uuid.UUID:
    """Return a new UUIDv7."""
    unix_ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    rand_a = rand >> 62 & 0xFFF
    rand_b = rand & ((1 << 62) - 1)
    value = (unix_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= rand_a << 64
    value |= 0b10 << 62
    value |= rand_b
    return uuid.UUID(int=value)


PICTURE_NAMESPACE = uuid.UUID("6f1c1b1e-8a43-4c0e-9d59-0d2f5e6c7a10")


def derived_id(kind: str, *parts: object) -> uuid.UUID:
    """A stable id derived from a kind and parts: the same inputs give the same id.

    Used as the message id of an event a handler may publish again after a redelivery,
    so JetStream's duplicate window drops the second copy.
    """
    return uuid.uuid5(PICTURE_NAMESPACE, "/".join((kind, *(str(p) for p in parts))))
