"""Process-wide settings for a long-running server process (signaling node, relay)."""

from __future__ import annotations

import gc


def tune_gc() -> None:
    """Keep garbage collection out of the request and packet paths' tail latency: objects
    made at start-up are frozen (never scanned again), young collections are rarer."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)
