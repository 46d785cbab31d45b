"""sft/allocator.py: while training on CPU, glibc serves large tensors from memory it keeps, not fresh mmaps."""

from __future__ import annotations

import ctypes
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest

from sft.allocator import DEFAULT_THRESHOLD, M_MMAP_THRESHOLD, _glibc, keep_freed_memory

BLOCK = 7 << 20  # an activation of 1,148 x 1,536 floats


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def _mapped_while_held(libc) -> int:
    """Bytes malloc had mmapped while a BLOCK-sized allocation was held (0 when it came from the heap)."""
    libc.mallinfo2.restype = MallInfo2
    libc.malloc.restype = ctypes.c_void_p
    before = libc.mallinfo2().hblkhd
    pointer = libc.malloc(BLOCK)
    ctypes.memset(pointer, 1, BLOCK)
    during = libc.mallinfo2().hblkhd
    libc.free(ctypes.c_void_p(pointer))
    return during - before


def _measure() -> tuple[int, bool, int, int]:
    """Mapped bytes of a held BLOCK with glibc's defaults, inside keep_freed_memory, and after it."""
    libc = _glibc()
    libc.mallopt(M_MMAP_THRESHOLD, DEFAULT_THRESHOLD)  # whatever glibc's dynamic threshold had grown to
    before = _mapped_while_held(libc)
    with keep_freed_memory() as applied:
        inside = _mapped_while_held(libc)
    return before, applied, inside, _mapped_while_held(libc)


@pytest.mark.skipif(_glibc() is None, reason="glibc only")
def test_large_blocks_come_from_kept_memory_inside_and_from_mmap_after() -> None:
    # In a fresh process: in this one, earlier tests may have left a free 7 MB chunk in the heap, and
    # malloc serves a block from a free chunk before it considers mmap at all.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        before, applied, inside, after = pool.submit(_measure).result()
    assert before >= BLOCK
    assert applied
    assert inside == 0
    assert after >= BLOCK  # the defaults are back: a 7 MB block is its own mapping


def test_disabled_changes_nothing() -> None:
    with keep_freed_memory(False) as applied:
        assert not applied
