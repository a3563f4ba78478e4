"""release_free_heap: the C heap's free pages go back to the OS (the bot's memory per call)."""

from __future__ import annotations

import sys
import threading

import pytest

from tsunagu.runtime import release_free_heap


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim")
def test_freed_memory_of_a_finished_thread_goes_back_to_the_os() -> None:
    # like a call's decoder thread: many C-heap blocks (bytearrays of 2 KiB, past Python's
    # small-object allocator) in its own arena, nearly all freed, a few kept, so the free
    # pages sit between live blocks and glibc keeps them until asked
    kept: list[bytearray] = []

    def work() -> None:
        blocks = [bytearray(2048) for _ in range(40_000)]  # about 80 MB, touched
        kept.extend(blocks[::64])
        del blocks

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    before = rss_kib()
    assert release_free_heap()
    after = rss_kib()
    assert before - after > 40_000, (before, after)  # most of the 80 MB, not a few pages
    assert len(kept) == 625
