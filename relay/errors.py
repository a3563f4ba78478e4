"""The relay's exceptions, mapped to HTTP answers in relay/control.py.

    ValueError
    └── BadOffer      400 {"error": "bad_sdp"}
    Exception
    ├── AtCapacity    503 {"error": "capacity"}
    └── Stale         409 {"error": "superseded" | "call_ended"}
"""

from __future__ import annotations


class BadOffer(ValueError):
    """The offer SDP cannot be answered."""


class AtCapacity(Exception):
    """The relay takes no new call: it is at its configured capacity or CPU limit."""


class Stale(Exception):
    """The answer is no longer wanted: a newer offer from the same party, or the call ended,
    while it was being made. ``reason`` goes on the wire."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
