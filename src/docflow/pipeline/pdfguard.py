"""Bound what a PDF's compressed streams may expand to, before PDFium inflates them.

PDFium inflates a content stream whole; a few kilobytes compressed several times over can ask
it for gigabytes, and it aborts the process rather than raise. So every Flate stream is
inflated here first, incrementally and against a budget shared by the whole file.

A file on disk is mapped and scanned a window at a time; streams are inflated piece by piece
and only counted, so the check itself holds a few megabytes whatever the file's size.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from pathlib import Path

from docflow.pipeline import _source
from docflow.pipeline._source import Buffer
from docflow.pipeline.types import StageError

MAX_INFLATED_BYTES = 256 * 1024 * 1024  # for all of a file's streams together
MAX_FLATE_LAYERS = 2  # a stream compressed more often than this is refused outright
_STEP = 4 * 1024 * 1024
_MAX_RATIO = 1032  # deflate's largest expansion per layer
# How much of a file one regex pass covers before its pages are released.
_WINDOW = 8 * 1024 * 1024
_LOOKBACK = 4096  # a stream's dictionary is searched this far back for the "obj" opening it

_STREAM = re.compile(rb">>\s*stream\r?\n")
# What a window may end in when a stream header starts in it and finishes in the next one.
_PARTIAL_STREAM = re.compile(rb">>\s*(?:s(?:t(?:r(?:e(?:a(?:m\r?)?)?)?)?)?)?")
_FLATE = re.compile(rb"/(?:FlateDecode|Fl)(?![A-Za-z])")
_ENDSTREAM = b"endstream"

BOMB = (
    "This PDF contains compressed data that expands far beyond its size (a decompression "
    "bomb), so it was not processed."
)


def check_pdf_streams(data: bytes | Path, budget: int = MAX_INFLATED_BYTES) -> int:
    """Raise StageError for a decompression bomb; return the inflated size when measured."""
    with _source.mapped(data) as buffer:
        # Deflate expands at most ~1032:1 per layer; when even that cannot reach the budget there
        # is nothing to measure (the common case, and it costs no inflating).
        bound = sum(
            (end - start) * _MAX_RATIO**layers for start, end, layers in _flate_streams(buffer)
        )
        if bound <= budget:
            return 0
        total = 0
        for start, end, layers in _flate_streams(buffer):
            total += _inflated_size(buffer, start, end, layers, budget - total)
        return total


def _flate_streams(buffer: Buffer) -> Iterator[tuple[int, int, int]]:
    """(start, end, Flate layers) of every stream whose dictionary names Flate, in file order."""
    ends = _EndFinder(buffer)
    for match in _stream_headers(buffer):
        # The stream's dictionary: back to the "obj" that opens it, within a few KB.
        window = max(0, match.start() - _LOOKBACK)
        opened = buffer.rfind(b"obj", window, match.start())
        layers = len(_FLATE.findall(buffer, opened if opened != -1 else window, match.start()))
        if layers == 0:
            continue
        if layers > MAX_FLATE_LAYERS:
            raise StageError(BOMB)
        yield match.end(), ends.first_after(match.end()), layers


def _stream_headers(buffer: Buffer) -> Iterator[re.Match[bytes]]:
    """The matches of `_STREAM.finditer(buffer)`, found one window at a time."""
    length = len(buffer)
    pos, span = 0, _WINDOW
    while pos < length:
        endpos = min(pos + span, length)
        resume = endpos if endpos == length else _resume_at(buffer, pos, endpos)
        if resume == pos:  # one header spans the whole window (a long run of whitespace)
            span *= 2
            continue
        # Every header that starts before `resume` also ends before it.
        yield from _STREAM.finditer(buffer, pos, resume)
        _source.release(buffer, max(0, pos - _LOOKBACK), resume - _LOOKBACK)
        pos, span = resume, _WINDOW


def _resume_at(buffer: Buffer, pos: int, endpos: int) -> int:
    """Where the next window starts: at a header begun before `endpos` but not finished by it."""
    # Only the last ">>" can begin one: what follows it in the header holds no ">".
    last = buffer.rfind(b">>", pos, endpos)
    if last != -1 and _PARTIAL_STREAM.fullmatch(buffer, last, endpos):
        return last
    if buffer[endpos - 1 : endpos] == b">":
        return endpos - 1
    return endpos


class _EndFinder:
    """`buffer.find(b"endstream", start)` (or the file's end), scanned one window at a time.

    Stream starts come in increasing order, so one search usually answers the next ones too.
    """

    def __init__(self, buffer: Buffer) -> None:
        self.buffer = buffer
        self.searched_from, self.found = 1, 0  # nothing searched yet

    def first_after(self, start: int) -> int:
        if self.searched_from <= start <= self.found:
            return self.found
        length = len(self.buffer)
        found, pos = length, start
        while pos < length:
            endpos = min(pos + _WINDOW, length)
            at = self.buffer.find(_ENDSTREAM, pos, endpos)
            if at != -1:
                found = at
                break
            if endpos == length:
                break
            _source.release(self.buffer, pos, endpos)
            pos = endpos - (len(_ENDSTREAM) - 1)  # a match may straddle the windows
        self.searched_from, self.found = start, found
        return found


def _inflated_size(buffer: Buffer, start: int, end: int, layers: int, allowance: int) -> int:
    """What the stream at [start, end) inflates to through its layers, up to `allowance`."""
    inflater = _LayeredInflater(layers, allowance)
    for offset in range(start, end, _STEP):
        if inflater.finished:
            break
        inflater.feed(buffer[offset : min(offset + _STEP, end)])
        _source.release(buffer, offset, offset + _STEP)
    inflater.flush()
    return inflater.produced[-1]


class _LayeredInflater:
    """Inflates data compressed `layers` times, counting what each layer makes, keeping none.

    A layer that turns out not to be valid Flate data stops there; the layers before it still
    count, as PDFium inflates them before it finds out. It judges the rest of the file itself.
    """

    def __init__(self, layers: int, allowance: int) -> None:
        self.inflaters = [zlib.decompressobj() for _ in range(layers)]
        self.produced = [0] * layers
        self.broken = [False] * layers
        self.allowance = allowance

    @property
    def finished(self) -> bool:
        return self.inflaters[0].eof or self.broken[0]

    def feed(self, data: bytes, level: int = 0) -> None:
        inflater = self.inflaters[level]
        # Bytes after the end of the compressed data are ignored, as PDFium ignores them.
        while data and not inflater.eof and not self.broken[level]:
            try:
                out = inflater.decompress(data, _STEP)
            except zlib.error:
                self.broken[level] = True
                return
            data = inflater.unconsumed_tail
            self._emit(out, level)

    def flush(self) -> None:
        for level, inflater in enumerate(self.inflaters):
            if inflater.eof or self.broken[level]:
                continue
            try:
                out = inflater.flush()
            except zlib.error:
                self.broken[level] = True
                continue
            self._emit(out, level)

    def _emit(self, out: bytes, level: int) -> None:
        self.produced[level] += len(out)
        if self.produced[level] > self.allowance:
            raise StageError(BOMB)
        if out and level + 1 < len(self.inflaters):
            self.feed(out, level + 1)
