"""Gossip checks for tests: the asynchronous validators the networks take, made from
plain functions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from p2p.network import Validation

Check = Callable[..., Awaitable[Validation]]


def checking(decide: Callable[..., Validation]) -> Check:
    """A gossip check (a network's ``Validator``, a ``Screen``, an ``AnnouncementCheck``)
    that answers what ``decide`` returns for its arguments."""
    async def check(*args: Any) -> Validation:
        return decide(*args)
    return check


accept = checking(lambda *_: Validation.ACCEPT)
ignore = checking(lambda *_: Validation.IGNORE)
