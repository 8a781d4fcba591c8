"""A body that arrives whole is split directly instead of through the push parser: for every
form, well formed or not, both ways must say the same thing (the file's name, type and bytes,
or the same error)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import Request
from fastapi.exceptions import RequestValidationError

from docflow.documents.upload_stream import MalformedUpload, receive_file
from docflow.errors import AppError

B = b"xYzBoundary42"


def form(*parts: bytes, preamble: bytes = b"", closing: bytes = b"--\r\n") -> bytes:
    body = preamble
    for part in parts:
        body += b"--" + B + b"\r\n" + part + b"\r\n"
    return body + b"--" + B + closing


def part(name: bytes, data: bytes, filename: bytes | None = None, extra: bytes = b"") -> bytes:
    disposition = b'Content-Disposition: form-data; name="' + name + b'"'
    if filename is not None:
        disposition += b'; filename="' + filename + b'"'
    return disposition + b"\r\n" + extra + b"\r\n" + data


FORMS = {
    "one file": form(part(b"file", b"hello", b"a.txt", b"Content-Type: text/plain\r\n")),
    "empty file": form(part(b"file", b"", b"empty.txt")),
    "field first": form(part(b"note", b"hi"), part(b"file", b"data\r\n--x", b"b.txt")),
    "field after": form(part(b"file", b"abc", b"c.pdf"), part(b"note", b"later")),
    "two files": form(part(b"file", b"first", b"1.txt"), part(b"file", b"second", b"2.txt")),
    "no file": form(part(b"note", b"hi")),
    "utf-8 name": form(part(b"file", b"x", "résumé ü.txt".encode())),
    "spaced headers": form(
        b'content-disposition:   form-data; name="file"; filename="d.txt"\r\n'
        b"CONTENT-TYPE:\ttext/plain  \r\n\r\nbody"
    ),
    "binary": form(part(b"file", bytes(range(256)) * 4, b"bin.docx")),
    "preamble": form(part(b"file", b"p", b"p.txt"), preamble=b"ignored preamble\r\n"),
    "no closing": form(part(b"file", b"open", b"o.txt"), closing=b""),
    "no final crlf": form(part(b"file", b"ok", b"n.txt"), closing=b"--"),
    "epilogue": form(part(b"file", b"ok", b"e.txt"), closing=b"--\r\nepilogue"),
    "header without colon": form(b"Content-Disposition form-data\r\n\r\nx"),
    "folded header": form(
        b'Content-Disposition: form-data;\r\n name="file"; filename="f.txt"\r\n\r\nx'
    ),
    "bad header name": form(b'Content Disposition: form-data; name="file"\r\n\r\nx'),
    "huge header": form(b"X-Pad: " + b"a" * 20_000 + b"\r\n" + part(b"file", b"x", b"h.txt")),
    "no blank line": b"--" + B + b'\r\nContent-Disposition: form-data; name="file"',
    "garbage": b"not a form at all",
    "empty": b"",
}


def _request(chunks: list[bytes]) -> Request:
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    scope = {
        "type": "http",
        "method": "POST",
        "headers": [(b"content-type", b"multipart/form-data; boundary=" + B)],
    }
    return Request(scope, receive)  # type: ignore[arg-type]


async def _outcome(chunks: list[bytes]) -> tuple[Any, ...]:
    try:
        file = await receive_file(_request(chunks), "file", 1024 * 1024)
        data = b"".join([c async for c in file.chunks()])
    except (AppError, RequestValidationError) as exc:
        return ("error", type(exc).__name__, getattr(exc, "status_code", 422))
    return (file.filename, file.content_type, data, file.whole is not None)


@pytest.mark.parametrize("name", list(FORMS))
async def test_a_whole_body_reads_as_the_push_parser_reads_it(name: str) -> None:
    body = FORMS[name]
    whole = await _outcome([body])
    # Split in two messages, the body goes through the push parser.
    cut = max(len(body) // 2, 1)
    streamed = await _outcome([body[:cut], body[cut:]] if body else [body])
    if whole[0] != "error" and streamed[0] != "error":
        assert whole[:3] == streamed[:3]
    else:
        assert whole == streamed


async def test_the_common_forms_take_the_direct_split() -> None:
    for name in ("one file", "field first", "field after", "utf-8 name", "spaced headers"):
        outcome = await _outcome([FORMS[name]])
        assert outcome[-1] is True, name
    assert (await _outcome([FORMS["one file"]]))[:3] == ("a.txt", "text/plain", b"hello")
    assert (await _outcome([FORMS["field first"]]))[2] == b"data\r\n--x"


async def test_a_malformed_whole_body_is_refused_like_a_streamed_one() -> None:
    file = await receive_file(_request([FORMS["no closing"]]), "file", 1024 * 1024)
    with pytest.raises(MalformedUpload):
        [c async for c in file.chunks()]
