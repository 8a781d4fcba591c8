"""CSV export neutralises cells a spreadsheet would run as formulas."""

from __future__ import annotations

import csv
import io

import httpx

from tests.fixtures.files import SAMPLE_TEXTS
from tests.helpers import upload, wait_status


async def test_csv_export_neutralises_formula_injection(
    client: httpx.AsyncClient, auth: dict[str, dict[str, str]]
) -> None:
    me, boss = auth["uploader"], auth["reviewer"]
    doc = await upload(
        client, me, "=1+2*cmd total.txt", SAMPLE_TEXTS["letter"].encode(), "text/plain"
    )
    await wait_status(client, me, doc["id"], {"review"})
    approved = await client.post(
        f"/api/v1/review/{doc['id']}/approve",
        headers=boss,
        json={
            "title": "@SUM(1+1)*cmd|' /C calc'!A0",
            "keywords": ["+cmd", "-2+3", "\tTAB", "plain"],
        },
    )
    assert approved.status_code == 200, approved.text
    response = await client.get("/api/v1/export", headers=me, params={"format": "csv"})
    assert response.status_code == 200
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(response.text))}
    row = rows[doc["id"]]
    assert row["filename"] == "'=1+2*cmd total.txt"
    assert row["title"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert row["keywords"].startswith("'+cmd")
    for cells in rows.values():
        for value in cells.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r", "\0")), value
    # JSON keeps the values as they are: only spreadsheets need the guard.
    exported = {r["id"]: r for r in (await client.get("/api/v1/export", headers=me)).json()}
    assert exported[doc["id"]]["title"].startswith("@SUM")
