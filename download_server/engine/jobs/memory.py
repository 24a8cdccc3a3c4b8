"""Give the C allocator's free memory back to the system after a run's one-off peak (a long first plan).

Python frees its small-object arenas only when they are wholly empty, and glibc keeps freed heap memory for
reuse: after a 100k-entry live window was parsed and stored, the process kept tens of MiB it no longer used
(issue 15). glibc's malloc_trim(0) returns the free pages of every malloc arena; elsewhere (musl, macOS)
there is nothing to call and nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    return trim


def release_free_memory() -> bool:
    """Blocking (a walk over the heap: run it in a thread). True when the allocator could be asked."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
