"""The allocator setting that keeps the HE batches' freed buffers in the heap."""

from __future__ import annotations

import ctypes
import ctypes.util

MALLOC_MMAP_THRESHOLD = 32 << 20
"""Allocations below this come from the heap, not mmap (glibc's largest allowed value)."""

MALLOC_TRIM_THRESHOLD = 256 << 20


def keep_freed_memory() -> bool:
    """Let glibc reuse freed blocks of a few MB instead of unmapping them (once per process).

    A batch makes and drops hundreds of 0.5-1 MB buffers (serialised ciphertexts,
    their numpy views, seeds expanded to c1). Above glibc's mmap threshold each is
    a fresh mmap, so every page is faulted in and zeroed again, and munmap on free:
    measured, about 6 % of a party's CPU and a third of its system time. Raising
    the mmap and trim thresholds keeps such blocks in the heap (the process keeps
    up to MALLOC_TRIM_THRESHOLD of freed memory). False where mallopt is missing
    (not glibc), which changes nothing but speed.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    return bool(mallopt(m_mmap_threshold, MALLOC_MMAP_THRESHOLD)
                and mallopt(m_trim_threshold, MALLOC_TRIM_THRESHOLD))
