"""Process-wide settings for a long-running server process (signaling node, relay)."""

from __future__ import annotations

import ctypes
import functools
import gc
from collections.abc import Callable
from typing import cast


def tune_gc() -> None:
    """Keep garbage collection out of the request and packet paths' tail latency: objects
    made at start-up are frozen (never scanned again), young collections are rarer."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)


@functools.cache
def _libc_malloc_trim() -> Callable[[int], int] | None:
    try:  # the C library the process already runs on: glibc has malloc_trim, musl not
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return cast(Callable[[int], int], trim)


def release_free_heap() -> bool:
    """Collect garbage (a closed peer connection's cycles), then give the C heap's free
    pages back to the OS (glibc ``malloc_trim(0)``); False where there is no glibc.

    A call's media (decoder and encoder threads, PyAV frames) frees its memory when it
    ends, but glibc keeps the freed pages in its per-thread arenas: without this a process
    that makes one call after another grows by megabytes a call although nothing of the
    calls stays alive (bench/bot_memory.py)."""
    gc.collect()
    trim = _libc_malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
