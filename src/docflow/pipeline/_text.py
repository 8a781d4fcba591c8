"""Byte-to-text decoding shared by validation and extraction."""

from __future__ import annotations

import codecs
import unicodedata
from pathlib import Path

from charset_normalizer import from_bytes

from docflow.pipeline import _source

# How much of a file decides its encoding. A file that changes encoding past this point is
# decoded with replacement characters where it does.
DETECT_BYTES = 1024 * 1024

_BOMS: tuple[tuple[bytes, str], ...] = (
    # UTF-32 first: its little-endian BOM starts with the UTF-16 one.
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def detect_encoding(data: bytes) -> str | None:
    """The encoding `data` is most likely written in, or None when it does not look like text."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding
    try:
        data.decode("utf-8")
        is_utf8 = True
    except UnicodeDecodeError as exc:
        # A sample cut in the middle of a multi-byte character is still UTF-8.
        is_utf8 = exc.reason == "unexpected end of data" and exc.start >= len(data) - 3
    if is_utf8 and b"\x00" not in data:
        return "utf-8"
    return _guess(data)


def _guess(data: bytes) -> str | None:
    best = from_bytes(data).best()
    if best is None:
        return None
    encoding = best.encoding
    # NUL bytes only belong in text when the text is UTF-16/32.
    if b"\x00" in data and not encoding.startswith(("utf_16", "utf_32")):
        return None
    return encoding


def decode_text(data: bytes | Path, max_chars: int) -> tuple[str, bool] | None:
    """Up to `max_chars` of `data` as normalised text (NFC, `\\n` line ends), and whether the
    file held more; None if it is not text.

    The file is read and decoded a chunk at a time: only the text kept is ever in memory.
    """
    encoding = detect_encoding(_source.head(data, DETECT_BYTES))
    if encoding is None:
        return None
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    parts: list[str] = []
    decoded, truncated = 0, False
    for chunk in _source.chunks(data):
        if decoded >= max_chars:
            truncated = True
            break
        parts.append(decoder.decode(chunk))
        decoded += len(parts[-1])
    else:
        parts.append(decoder.decode(b"", final=True))
    text = normalize_text("".join(parts))
    if len(text) > max_chars:
        text, truncated = text[:max_chars], True
    return text, truncated


def normalize_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return unicodedata.normalize("NFC", text)
