"""Read a multipart upload as it arrives, so the size limit holds while streaming.

FastAPI's `UploadFile` spools the whole body to a temporary file before the handler runs: an
oversize upload would already be on disk when we refuse it. Here the request stream feeds
python-multipart's push parser directly and the file part's bytes go straight to storage, so a
413 leaves nothing behind and memory stays at one chunk.

Most uploads are small: their whole body arrives as one ASGI message. A plainly well-formed body
of that kind is split directly (`_whole_parts`), without the push parser's per-byte header
state machine and callbacks; anything unusual about it goes through the parser, which decides.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect
from starlette.types import Receive

from docflow.errors import AppError, PayloadTooLarge

# Room for the multipart framing and small form fields beside the file.
FORM_OVERHEAD_BYTES = 64 * 1024
MAX_PART_HEADER_BYTES = 16 * 1024

# The request body of POST /documents, for the OpenAPI schema (the route reads the raw stream).
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


class MalformedUpload(AppError):
    status_code, code = 400, "bad_request"


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    header_bytes: int = 0


class _Collector:
    """Turns the parser's callbacks into a list of events the async side drains."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.part = _Part()
        self.field, self.value = bytearray(), bytearray()
        self.ended = False

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": lambda: self.events.append(("headers", self.part.headers)),
            "on_part_data": lambda data, start, end: self.events.append(
                ("data", bytes(data[start:end]))
            ),
            "on_part_end": lambda: self.events.append(("end", None)),
            "on_end": self._end,
        }

    def _begin(self) -> None:
        self.part = _Part()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._grow(end - start)
        self.field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._grow(end - start)
        self.value += data[start:end]

    def _header_end(self) -> None:
        self.part.headers[bytes(self.field).lower()] = bytes(self.value)
        self.field, self.value = bytearray(), bytearray()

    def _grow(self, size: int) -> None:
        self.part.header_bytes += size
        if self.part.header_bytes > MAX_PART_HEADER_BYTES:
            raise MalformedUpload("A part of the upload has oversized headers.")

    def _end(self) -> None:
        self.ended = True

    def drain(self) -> list[tuple[str, Any]]:
        events, self.events = self.events, []
        return events


@dataclass
class IncomingFile:
    """The file part of an upload: its name and type as the client claims, and its bytes."""

    filename: str | None
    content_type: str | None
    _events: AsyncIterator[tuple[str, Any]] | None = None
    whole: bytes | None = None  # the file's bytes, when the body was split at once

    async def chunks(self) -> AsyncIterator[bytes]:
        if self._events is None:
            if self.whole:
                yield self.whole
            return
        async for kind, value in self._events:
            if kind == "data":
                if value:
                    yield value
            elif kind == "end":
                # Read the rest of the form (its closing boundary, or fields after the file,
                # within the same size limit), so the request's stream and this parser finish
                # here rather than in the garbage collector's finalizer tasks.
                async for _ in self._events:
                    pass
                return
        raise MalformedUpload("The upload ended before the file did.")


def _missing_file() -> RequestValidationError:
    return RequestValidationError(
        [{"type": "missing", "loc": ("body", "file"), "msg": "Field required", "input": None}]
    )


async def _events(
    stream: AsyncIterator[bytes], boundary: bytes, max_body: int
) -> AsyncIterator[tuple[str, Any]]:
    collector = _Collector()
    parser = MultipartParser(boundary, collector.callbacks())  # type: ignore[arg-type]
    received = 0
    try:
        async for chunk in stream:
            received += len(chunk)
            if received > max_body:
                raise _too_large(max_body)
            parser.write(chunk)
            for event in collector.drain():
                yield event
        parser.finalize()
    except MultipartParseError as exc:
        raise MalformedUpload("The upload is not valid multipart/form-data.") from exc
    for event in collector.drain():
        yield event
    if not collector.ended:
        raise MalformedUpload("The upload ended before the form did.")


def _too_large(max_body: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        "The upload is larger than the limit.",
        details={"limit_bytes": max_body - FORM_OVERHEAD_BYTES},
    )


async def _stream(first: bytes, more: bool, receive: Receive) -> AsyncIterator[bytes]:
    """The request body: the first message's bytes, then the rest as it arrives."""
    if first:
        yield first
    while more:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        more = bool(message.get("more_body", False))
        if body := message.get("body", b""):
            yield body


_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def _whole_parts(body: bytes, boundary: bytes) -> list[tuple[dict[bytes, bytes], bytes]] | None:
    """The parts of a complete body: (headers, bytes) each; None for anything but a plainly
    well-formed form (a preamble, header folding, odd names, oversized headers, no closing
    delimiter), which the push parser then reads and judges."""
    delimiter = b"--" + boundary
    if not body.startswith(delimiter + b"\r\n"):
        return None
    separator = b"\r\n" + delimiter
    parts: list[tuple[dict[bytes, bytes], bytes]] = []
    pos = len(delimiter) + 2
    while True:
        end = body.find(separator, pos)
        head_end = body.find(b"\r\n\r\n", pos, end)
        if end < 0 or head_end < 0 or head_end - pos > MAX_PART_HEADER_BYTES:
            return None
        headers: dict[bytes, bytes] = {}
        for line in body[pos:head_end].split(b"\r\n"):
            name, colon, value = line.partition(b":")
            if not colon or not name or not _TOKEN.issuperset(name):
                return None
            headers[name.lower()] = value.lstrip(b" \t")
        parts.append((headers, body[head_end + 4 : end]))
        pos = end + len(separator)
        after = body[pos : pos + 2]
        if after == b"--":
            return parts
        if after != b"\r\n":
            return None
        pos += 2


def _named(headers: dict[bytes, bytes], field_name: str) -> tuple[bool, bytes | None]:
    """Whether a part is the form field `field_name`, and its filename."""
    _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
    named = disposition.get(b"name", b"").decode("utf-8", "replace") == field_name
    return named, disposition.get(b"filename")


def _incoming(
    headers: dict[bytes, bytes],
    filename: bytes | None,
    events: AsyncIterator[tuple[str, Any]] | None = None,
    whole: bytes | None = None,
) -> IncomingFile:
    part_type = headers.get(b"content-type")
    return IncomingFile(
        filename=filename.decode("utf-8", "replace") if filename is not None else None,
        content_type=part_type.decode("latin-1").strip()[:255] if part_type else None,
        _events=events,
        whole=whole,
    )


async def receive_file(request: Request, field_name: str, max_file_bytes: int) -> IncomingFile:
    """Parse the form up to the start of `field_name`'s file; its bytes are read later, lazily."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise _missing_file()
    max_body = max_file_bytes + FORM_OVERHEAD_BYTES
    message = await request.receive()
    if message["type"] != "http.request":
        raise ClientDisconnect()
    first, more = message.get("body", b""), bool(message.get("more_body", False))
    if len(first) > max_body:
        raise _too_large(max_body)
    parts = None if more else _whole_parts(first, boundary)
    if parts is not None:
        for headers, data in parts:
            named, filename = _named(headers, field_name)
            if named:
                return _incoming(headers, filename, whole=data)
        raise _missing_file()
    events = _events(_stream(first, more, request.receive), boundary, max_body)
    async for kind, value in events:
        if kind == "headers":
            named, filename = _named(value, field_name)
            if named:
                return _incoming(value, filename, events=events)
    raise _missing_file()
