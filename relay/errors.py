"""The relay's exceptions, mapped to HTTP answers in relay/control.py.

    ValueError
    └── BadOffer      400 {"error": "bad_sdp"}
    Exception
    └── AtCapacity    503 {"error": "capacity"}
"""

from __future__ import annotations


class BadOffer(ValueError):
    """The offer SDP cannot be answered."""


class AtCapacity(Exception):
    """The relay takes no new call: it is at its configured capacity or CPU limit."""
