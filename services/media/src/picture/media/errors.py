"""The media error tree: every failure of an ingest is one of these.

::

    MediaError                      base; ``code`` is stable, ``message`` readable by a user
    ├── TransientMediaError         retrying may help: connection errors, timeouts, 5xx, 429
    └── PermanentMediaError         retrying cannot help: host not allowed, private address,
                                    too large, not an image, unsupported format,
                                    decompression bomb, 4xx

The ingest handler retries transient errors a few times itself, then reports the kind in its
``media.failed`` event; the orchestrator decides what to do with the generation.
"""

from __future__ import annotations

from picture.common.contracts import ErrorInfo, ErrorKind


class MediaError(Exception):
    kind: ErrorKind = ErrorKind.PERMANENT

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def to_error_info(self) -> ErrorInfo:
        return ErrorInfo(kind=self.kind, code=self.code, message=self.message)


class TransientMediaError(MediaError):
    kind = ErrorKind.TRANSIENT


class PermanentMediaError(MediaError):
    kind = ErrorKind.PERMANENT


class InvalidKeyError(ValueError):
    """An object key that is not one the server could have made (``..``, absolute, empty)."""
