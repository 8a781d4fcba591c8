"""The JSON export joins PostgreSQL's newline-terminated lines into one array as they stream."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator

from docflow.export.service import json_array


async def _pieces(data: bytes, cuts: list[int]) -> AsyncIterator[bytes]:
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        yield data[start:cut]
        start = cut


async def _join(data: bytes, cuts: list[int]) -> bytes:
    return b"".join([chunk async for chunk in json_array(_pieces(data, cuts))])


async def test_rows_cut_anywhere_make_one_valid_array() -> None:
    rows = [{"id": n, "title": f"doc {n}", "keywords": ["a", "b\nc"], "x": None} for n in range(50)]
    data = b"".join(json.dumps(row).encode() + b"\n" for row in rows)
    rng = random.Random(7)
    for _ in range(200):
        cuts = rng.sample(range(len(data)), rng.randint(0, 40))
        assert json.loads(await _join(data, cuts)) == rows
    # every cut right after, and right before, a newline
    newlines = [i for i, byte in enumerate(data) if byte == ord("\n")]
    assert json.loads(await _join(data, [i + 1 for i in newlines[:-1]])) == rows
    assert json.loads(await _join(data, newlines)) == rows


async def test_no_rows_is_an_empty_array() -> None:
    assert json.loads(await _join(b"", [])) == []
    assert json.loads(b"".join([c async for c in json_array(_pieces(b"", []))])) == []
