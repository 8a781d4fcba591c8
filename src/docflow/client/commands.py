"""What `docflow upload/status/export` do; cli.py only parses flags and calls these."""

from __future__ import annotations

import asyncio
import json
import mimetypes
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from docflow.client.api import ClientError, Credentials, client_for, error_message, sign_in

DONE = {"review", "finalised"}
BAD = {"failed", "rejected"}
STAGES = ("validate", "extract", "analyze", "categorize")


@dataclass
class Tracked:
    id: str
    name: str
    status: str = "uploaded"
    stage: str | None = None
    progress: int = 0
    message: str = ""
    task: TaskID | None = None
    stages_done: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.status in DONE | BAD

    def apply(self, data: dict[str, Any]) -> None:
        self.status = data.get("status") or self.status
        self.stage = data.get("stage", self.stage)
        if data.get("progress") is not None:
            self.progress = int(data["progress"])
        self.message = data.get("message") or data.get("error") or self.message
        if data.get("type") == "stage.completed" and data.get("stage"):
            self.stages_done.append(str(data["stage"]))

    def line(self) -> str:
        where = self.stage or ""
        return f"{self.name[:22]:<22} {self.status:<10} {where:<10} {self.message[:36]}"


async def upload(
    files: list[Path], creds: Credentials, *, follow: bool, wait_seconds: float, console: Console
) -> int:
    for path in files:
        if not path.is_file():
            raise ClientError(f"{path}: no such file")
    async with client_for(creds) as client:
        headers = await sign_in(client, creds)
        tracked: list[Tracked] = []
        for path in files:
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            with path.open("rb") as fh:
                response = await client.post(
                    "/api/v1/documents",
                    headers=headers,
                    files={"file": (path.name, fh, content_type)},
                )
            if response.status_code not in (200, 201):
                console.print(f"[red]{path.name}: {error_message(response)}[/red]")
                tracked.append(
                    Tracked("", path.name, status="failed", message=error_message(response))
                )
                continue
            body = response.json()
            tracked.append(Tracked(body["id"], path.name, body["status"]))
            console.print(f"uploaded {path.name} -> {body['id']}")
        if follow:
            await _follow(client, headers, [t for t in tracked if t.id], wait_seconds, console)
        for item in tracked:
            if follow or not item.id:
                colour = (
                    "green" if item.status in DONE else "red" if item.status in BAD else "yellow"
                )
                console.print(f"[{colour}]{item.line()}[/{colour}]")
    if any(item.status in BAD for item in tracked):
        return 1
    if follow and not all(item.finished for item in tracked):
        return 3  # still running when we gave up waiting
    return 0


async def _refresh(client: httpx.AsyncClient, headers: dict[str, str], item: Tracked) -> None:
    response = await client.get(f"/api/v1/documents/{item.id}", headers=headers)
    if response.status_code == 200:
        item.apply(response.json())


async def _follow(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    items: list[Tracked],
    wait_seconds: float,
    console: Console,
) -> None:
    """One per-user stream carries every document's events; the database is re-read on open so
    nothing that happened before the stream connected is missed."""
    by_id = {item.id: item for item in items}
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(bar_width=30),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    with progress:
        for item in items:
            item.task = progress.add_task(item.line(), total=100)

        def draw(item: Tracked) -> None:
            assert item.task is not None
            progress.update(
                item.task,
                completed=100 if item.status in DONE else item.progress,
                description=item.line(),
            )

        deadline = time.monotonic() + wait_seconds
        while not all(i.finished for i in items) and time.monotonic() < deadline:
            try:
                async with asyncio.timeout(max(deadline - time.monotonic(), 0.1)):
                    await _read_stream(client, headers, by_id, draw)
            except TimeoutError:
                break
            except httpx.HTTPError:
                await asyncio.sleep(1)  # the stream dropped: reconnect and re-read the state


async def _read_stream(
    client: httpx.AsyncClient, headers: dict[str, str], by_id: dict[str, Tracked], draw: Any
) -> None:
    async with client.stream(
        "GET", "/api/v1/documents/stream", headers=headers, timeout=httpx.Timeout(None, connect=5)
    ) as response:
        if response.status_code != 200:
            raise ClientError(f"cannot follow progress: HTTP {response.status_code}")
        event, data = "message", []
        async for line in response.aiter_lines():
            if line:
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "event":
                    event = value
                elif name == "data":
                    data.append(value)
                continue
            if not data:
                continue
            payload = json.loads("\n".join(data))
            if event == "snapshot":
                for item in by_id.values():
                    await _refresh(client, headers, item)
                    draw(item)
            elif (hit := by_id.get(str(payload.get("document_id")))) is not None:
                hit.apply(payload)
                if hit.finished:
                    await _refresh(client, headers, hit)  # the row is the truth
                draw(hit)
            event, data = "message", []
            if all(i.finished for i in by_id.values()):
                return


async def status(doc_id: str, creds: Credentials, *, as_json: bool, out: TextIO) -> int:
    async with client_for(creds) as client:
        headers = await sign_in(client, creds)
        response = await client.get(f"/api/v1/documents/{doc_id}", headers=headers)
    if response.status_code != 200:
        raise ClientError(error_message(response))
    doc: dict[str, Any] = response.json()
    if as_json:
        out.write(json.dumps(doc, indent=2) + "\n")
    else:
        rows = [
            ("id", doc.get("id")),
            ("file", doc.get("filename")),
            ("status", doc.get("status")),
            ("stage", doc.get("stage")),
            ("progress", f"{doc.get('progress', 0)}%"),
            ("message", doc.get("message")),
            ("error", doc.get("error")),
            ("category", doc.get("category")),
            ("title", doc.get("title")),
            ("keywords", ", ".join(doc.get("keywords") or [])),
        ]
        timings = doc.get("timings") or {}
        for stage in STAGES:
            if isinstance(timings.get(stage), dict) and "duration_ms" in timings[stage]:
                rows.append((f"{stage} ms", timings[stage]["duration_ms"]))
        for key, value in rows:
            if value not in (None, ""):
                out.write(f"{key:>13}: {value}\n")
    return 1 if doc.get("status") in BAD else 0


async def export(creds: Credentials, fmt: str, output: str, filters: dict[str, str]) -> int:
    params = {"format": fmt, **{k: v for k, v in filters.items() if v}}
    async with client_for(creds) as client:
        headers = await sign_in(client, creds)
        async with client.stream(
            "GET",
            "/api/v1/export",
            params=params,
            headers=headers,
            timeout=httpx.Timeout(None, connect=5),
        ) as response:
            if response.status_code != 200:
                await response.aread()
                raise ClientError(error_message(response))
            if output == "-":
                async for chunk in response.aiter_bytes():
                    sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
                return 0
            # Written beside the target and renamed, so a broken download never looks complete.
            target = Path(output)
            partial = target.with_name(target.name + ".part")
            with partial.open("wb") as fh:
                async for chunk in response.aiter_bytes():
                    fh.write(chunk)
            partial.replace(target)
    return 0
