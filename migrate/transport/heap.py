"""Keep the process's heap from holding on to freed transfer buffers (glibc malloc only; a no-op elsewhere).

glibc serves an allocation above M_MMAP_THRESHOLD with its own mmap and returns it to the OS when freed, but
after the first such block is freed it raises the threshold (up to 32 MiB), so later multi-MiB buffers of a
stream (downloaded pieces, chunk bodies, hash blocks) come from the arenas and stay in the RSS as fragments. A
fixed threshold turns that adjustment off (tests/test_heap.py shows the difference in glibc's own counters).
"""

from __future__ import annotations

import sys

M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 256 * 1024


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Set a fixed mmap threshold; True when glibc took it."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))
