"""The gateway's contracts: the events it publishes on behalf of users (account deletion)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

from picture.common.contracts.messages import Message
from picture.common.contracts.subjects import Channel

__all__ = ["ACCOUNT_DELETED", "AccountDeletedEvent"]


class AccountDeletedEvent(Message):
    """The user deleted their account (``DELETE /v1/me``): every service deletes the user's rows
    and objects it owns. Each consumes it with a durable consumer of its own; handling it twice
    deletes nothing more."""

    TYPE: ClassVar[str] = "account.deleted"

    user_id: uuid.UUID
    requested_at: datetime


ACCOUNT_DELETED = Channel("picture.evt.account.deleted.{user_id}", AccountDeletedEvent)
