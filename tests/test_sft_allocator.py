"""sft/allocator.py: while training on CPU, glibc serves large tensors from memory it keeps, not fresh mmaps."""

from __future__ import annotations

import ctypes

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


@pytest.mark.skipif(_glibc() is None, reason="glibc only")
def test_large_blocks_come_from_kept_memory_inside_and_from_mmap_after() -> None:
    libc = _glibc()
    libc.mallopt(M_MMAP_THRESHOLD, DEFAULT_THRESHOLD)  # whatever glibc's dynamic threshold had grown to
    assert _mapped_while_held(libc) >= BLOCK
    with keep_freed_memory() as applied:
        assert applied
        assert _mapped_while_held(libc) == 0
    assert _mapped_while_held(libc) >= BLOCK  # the defaults are back: a 7 MB block is its own mapping


def test_disabled_changes_nothing() -> None:
    with keep_freed_memory(False) as applied:
        assert not applied
