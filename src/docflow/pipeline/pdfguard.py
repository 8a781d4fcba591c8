"""Bound what a PDF's compressed streams may expand to, before PDFium inflates them.

PDFium inflates a content stream whole; a few kilobytes compressed several times over can ask
it for gigabytes, and it aborts the process rather than raise. So every Flate stream is
inflated here first, incrementally and against a budget shared by the whole file.
"""

from __future__ import annotations

import re
import zlib

from docflow.pipeline.types import StageError

MAX_INFLATED_BYTES = 256 * 1024 * 1024  # for all of a file's streams together
MAX_FLATE_LAYERS = 2  # a stream compressed more often than this is refused outright
_STEP = 4 * 1024 * 1024
_MAX_RATIO = 1032  # deflate's largest expansion per layer

_STREAM = re.compile(rb">>\s*stream\r?\n")
_FLATE = re.compile(rb"/(?:FlateDecode|Fl)(?![A-Za-z])")

BOMB = (
    "This PDF contains compressed data that expands far beyond its size (a decompression "
    "bomb), so it was not processed."
)


def check_pdf_streams(data: bytes, budget: int = MAX_INFLATED_BYTES) -> int:
    """Raise StageError for a decompression bomb; return the inflated size when measured."""
    streams: list[tuple[bytes, int]] = []
    for match in _STREAM.finditer(data):
        # The stream's dictionary: back to the "obj" that opens it, within a few KB.
        window = max(0, match.start() - 4096)
        opened = data.rfind(b"obj", window, match.start())
        layers = len(_FLATE.findall(data, opened if opened != -1 else window, match.start()))
        if layers == 0:
            continue
        if layers > MAX_FLATE_LAYERS:
            raise StageError(BOMB)
        start = match.end()
        end = data.find(b"endstream", start)
        streams.append((data[start : end if end != -1 else len(data)], layers))
    # Deflate expands at most ~1032:1 per layer; when even that cannot reach the budget there
    # is nothing to measure (the common case, and it costs no inflating).
    if sum(len(raw) * _MAX_RATIO**layers for raw, layers in streams) <= budget:
        return 0
    total = 0
    for raw, layers in streams:
        chunk = raw
        for _ in range(layers):
            chunk = _inflate(chunk, budget - total)
            if not chunk:
                break  # not valid Flate data: PDFium will judge the file itself
        total += len(chunk)
    return total


def _inflate(data: bytes, allowance: int) -> bytes:
    """Inflate `data`, refusing to produce more than `allowance` bytes."""
    inflater = zlib.decompressobj()
    out = bytearray()
    pending = data
    try:
        while pending:
            out += inflater.decompress(pending, _STEP)
            if len(out) > allowance:
                raise StageError(BOMB)
            pending = inflater.unconsumed_tail
        out += inflater.flush()
    except zlib.error:
        return b""
    if len(out) > allowance:
        raise StageError(BOMB)
    return bytes(out)
