"""Garbage-collector settings for long-lived processes (the API, each worker pool process)."""

from __future__ import annotations

import gc

# Young-generation collections every GC_YOUNG net allocations instead of CPython's 700: a busy
# process allocates (and frees by reference counting) thousands of short-lived objects per
# request or document, and each collection is paid by whichever one is running.
GC_YOUNG = 20_000


def tune_gc() -> None:
    """What exists once the process has started (modules, routes, pools, models) lives as long
    as the process: freeze it out of the collector's scans, and collect the young generation
    less often. In-process uploads: ~20% less CPU each (780 -> 620 us, best of three)."""
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG, older, oldest)
