"""A file's bytes, in memory or in a file on disk: what the pure stages take as input.

The worker hands them a path (the original spooled to a temporary file), so a large upload is
never read into memory whole; tests and the API's early sniff hand them bytes. Both go through
these helpers, which read only the parts asked for.
"""

from __future__ import annotations

import contextlib
import io
import mmap
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, TypeAlias

Source: TypeAlias = bytes | Path
# A buffer the `re` module and bytes.find can scan: the bytes themselves, or the file mapped.
Buffer: TypeAlias = bytes | mmap.mmap

CHUNK_BYTES = 1024 * 1024


def size(source: Source) -> int:
    return source.stat().st_size if isinstance(source, Path) else len(source)


def head(source: Source, count: int) -> bytes:
    """The first `count` bytes (fewer if the file is shorter)."""
    if not isinstance(source, Path):
        return source[:count]
    with source.open("rb") as fh:
        return fh.read(count)


def tail(source: Source, count: int) -> bytes:
    """The last `count` bytes (all of them if the file is shorter)."""
    if not isinstance(source, Path):
        return source[-count:]
    with source.open("rb") as fh:
        fh.seek(max(0, fh.seek(0, os.SEEK_END) - count))
        return fh.read()


@contextlib.contextmanager
def opened(source: Source) -> Iterator[BinaryIO]:
    """A seekable binary file object over the bytes (BytesIO shares them, no copy)."""
    if isinstance(source, Path):
        with source.open("rb") as fh:
            yield fh
    else:
        yield io.BytesIO(source)


def chunks(source: Source, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The bytes in order, `chunk_bytes` at a time."""
    if isinstance(source, Path):
        with source.open("rb") as fh:
            while chunk := fh.read(chunk_bytes):
                yield chunk
    else:
        for start in range(0, len(source), chunk_bytes):
            yield source[start : start + chunk_bytes]


@contextlib.contextmanager
def mapped(source: Source) -> Iterator[Buffer]:
    """The bytes, or the file mapped read-only: regexes run over it without copying it in.

    Mapped pages are the page cache's, not the process's heap; `release` drops the ones a scan
    has finished with, so a scan of a large file does not leave all of it resident.
    """
    if not isinstance(source, Path):
        yield source
        return
    with source.open("rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            yield b""  # mmap cannot map an empty file
            return
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
            yield buffer


def release(buffer: Buffer, start: int, end: int) -> None:
    """Tell the kernel this process is done with [start, end) of a mapped file (a hint)."""
    if not isinstance(buffer, mmap.mmap) or not hasattr(mmap, "MADV_DONTNEED"):
        return
    start -= start % mmap.PAGESIZE
    end -= end % mmap.PAGESIZE
    if end > start:
        buffer.madvise(mmap.MADV_DONTNEED, start, end - start)
