"""The adapter's exceptions, in one tree::

    AdapterError
    ├── InputError                  the parameters cannot become a model input (permanent)
    │   └── UnsupportedParameter    a parameter the model does not take, named by ``field``
    └── ReplicateError              a call to Replicate failed
        ├── TransientReplicateError connect errors, timeouts, 5xx, 429 (``retry_after``)
        └── PermanentReplicateError 400/401/403/404/422...: retrying the same call cannot help

``TransientReplicateError.maybe_created`` is true when a create request may have reached
Replicate (a timeout after sending): the prediction may exist and must be reconciled, not
blindly created again.
"""

from __future__ import annotations


class AdapterError(Exception):
    """Base of the adapter's errors."""


class InputError(AdapterError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class UnsupportedParameter(InputError):
    def __init__(self, field: str, model: str) -> None:
        super().__init__(field, f"{model} does not support the parameter '{field}'")


class ReplicateError(AdapterError):
    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class TransientReplicateError(ReplicateError):
    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        maybe_created: bool = False,
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after
        self.maybe_created = maybe_created


class PermanentReplicateError(ReplicateError):
    pass
