"""Keep freed memory in the process heap instead of handing it back to the kernel (glibc).

glibc's default malloc serves blocks above an adaptive threshold (128 KB, growing to at
most 32 MB) with ``mmap`` and returns them to the kernel on ``free``. A training step
that allocates and frees the same multi-MB temporaries every step (the HKU custom
convolution: its unfolded input and that input's gradient) then page-faults all of those
pages in again on the next step: ~1,800 minor faults per SimpleCNN step on the machine
this was measured on, against 0 for torch.nn's layers, and a median step ~1.2x slower
than its own fastest (``benchmarks/bench_layers.py``). Raising the mmap threshold to its
maximum and the trim threshold above it keeps such blocks for reuse; the maths and
results do not change, only where the bytes come from.

The same setting as ``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=134217728``
in the environment; a no-op (returning False) where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value on 64-bit
TRIM_THRESHOLD = 128 << 20


def retain_freed_memory() -> bool:
    """Keep freed blocks up to 32 MB in the heap for this process; True when it took effect."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
            libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        )
    except (OSError, AttributeError):  # not glibc: mallopt is missing
        return False
