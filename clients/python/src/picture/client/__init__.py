"""Picture's Python SDK: :class:`Picture` (sync) and :class:`AsyncPicture` (async) over httpx.

Models are generated from the gateway's OpenAPI document (``picture.client.models``).
"""

from picture.client import _models as models
from picture.client._retry import RetryPolicy
from picture.client.aio import AsyncPicture
from picture.client.client import Picture
from picture.client.errors import (
    AuthenticationError,
    ConflictError,
    GenerationFailedError,
    NotFoundError,
    PictureError,
    RateLimitError,
    ServerError,
    TransportError,
    ValidationError,
    WaitTimeoutError,
)

__all__ = [
    "AsyncPicture",
    "AuthenticationError",
    "ConflictError",
    "GenerationFailedError",
    "NotFoundError",
    "Picture",
    "PictureError",
    "RateLimitError",
    "RetryPolicy",
    "ServerError",
    "TransportError",
    "ValidationError",
    "WaitTimeoutError",
    "models",
]
