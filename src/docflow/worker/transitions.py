"""What each state change of the stage path writes: the columns, parameters and events that
`stage_repository.transition` turns into one statement (several changes held in a row: `merged`)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from docflow import jsontext
from docflow.config import get_settings
from docflow.documents import stage_repository as repo
from docflow.documents.lifecycle import STAGE_VERBS, overall_progress
from docflow.models import Stage, Status

# Names this worker host in the audit trail; overridable where hosts share a hostname.
HOST = os.environ.get("DOCFLOW_HOSTNAME") or socket.gethostname()


def actor() -> str:
    return f"worker:{HOST}:{os.getpid()}"


_TIMINGS_START = (
    "coalesce(timings, '{}'::jsonb) || jsonb_build_object(CAST(:start_stage AS text),"
    " jsonb_build_object('started_at', CAST(:started_at AS text)))"
)


def start(stage: Stage, queue: str | None, *, fresh: bool) -> dict[str, Any]:
    """The columns, parameters and event that mark `stage` started and held by this task.

    `fresh`: claimed just now (a resumed stage says which attempt it is); otherwise the stage
    is chained within the statement that completed the one before, as its first attempt."""
    settings = get_settings()
    verb = STAGE_VERBS[stage]
    sets = {
        "stage": "CAST(:start_stage AS text)",
        "status": "'processing'",
        "lease_owner": "CAST(:owner AS text)",
        "lease_until": "statement_timestamp() + make_interval(secs => :lease)",
        "progress": ":start_progress",
        "timings": _TIMINGS_START,
    }
    params: dict[str, Any] = {
        "start_stage": stage.value,
        "lease": settings.lease_seconds,
        "start_progress": overall_progress(stage),
        "started_at": iso(),
        "start_message": f"{verb}…",
    }
    if fresh:
        sets["attempts"] = "attempts + 1"
        sets["message"] = (
            "CASE WHEN attempts > 0 THEN CAST(:resume_head AS text) || (attempts + 1)"
            " || CAST(:resume_tail AS text) ELSE CAST(:start_message AS text) END"
        )
        params["resume_head"] = f"{verb}… (resuming after a lost worker, attempt "
        params["resume_tail"] = f" of {settings.max_attempts})"
    else:
        sets["attempts"] = "1"
        sets["message"] = "CAST(:start_message AS text)"
    event = repo.NewEvent(
        "stage.started",
        Status.PROCESSING.value,
        stage.value,
        overall_progress(stage),
        data={"max_attempts": settings.max_attempts, "queue": queue, "worker": HOST},
        with_attempt=True,
    )
    return {"sets": sets, "params": params, "events": [event]}


def finish(
    stage: Stage,
    outcome: Any,
    elapsed_ms: float,
    following: Stage | None,
    chain: bool,
    queue: str | None,
) -> dict[str, Any]:
    """The columns, parameters and events that complete `stage`, then: review (no stage
    follows), the next stage started here (`chain`), or the next stage left for its task."""
    done_message = f"{STAGE_VERBS[stage]}: done"
    completed = repo.NewEvent(
        "stage.completed",
        Status.PROCESSING.value,
        stage.value,
        overall_progress(stage, 1, 1),
        message=done_message,
        data={**outcome.data, "duration_ms": elapsed_ms},
    )
    finished = (
        "coalesce(timings, '{}'::jsonb) || jsonb_build_object(CAST(:stage AS text),"
        " coalesce(timings -> CAST(:stage AS text), '{}'::jsonb)"
        " || jsonb_build_object('finished_at', CAST(:finished_at AS text),"
        " 'duration_ms', CAST(:duration_ms AS double precision)))"
    )
    params: dict[str, Any] = {"finished_at": iso(), "duration_ms": elapsed_ms}
    if following is None:
        return {
            "sets": {
                "timings": finished,
                "status": "'review'",
                "stage": "NULL",
                "progress": "100",
                "message": "'Ready for review'",
                "lease_owner": "NULL",
                "lease_until": "NULL",
                "attempts": "0",
            },
            "params": params,
            "events": [
                completed,
                repo.NewEvent(
                    "document.review", Status.REVIEW.value, None, 100, message="Ready for review"
                ),
            ],
        }
    if not chain:
        return {
            "sets": {
                "timings": finished,
                "stage": "CAST(:next_stage AS text)",
                "enqueued_at": "statement_timestamp()",
                "progress": ":done_progress",
                "message": "CAST(:done_message AS text)",
                "lease_owner": "NULL",
                "lease_until": "NULL",
                "attempts": "0",
            },
            "params": {
                **params,
                "next_stage": following.value,
                "done_progress": overall_progress(stage, 1, 1),
                "done_message": done_message,
            },
            "events": [completed],
        }
    begun = start(following, queue, fresh=False)
    # The finished stage's timing and the next one's start, in one expression.
    timings = finished + " || jsonb_build_object(CAST(:start_stage AS text),"
    timings += " jsonb_build_object('started_at', CAST(:started_at AS text)))"
    return {
        "sets": {**begun["sets"], "timings": timings, "enqueued_at": "statement_timestamp()"},
        "params": {**params, **begun["params"]},
        "events": [completed, *begun["events"]],
    }


def iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True, slots=True)
class Step:
    """A finished stage on its way to the database: its outcome, what `finish` made of it, when
    it started, and its live progress not yet published."""

    stage: Stage
    outcome: Any
    elapsed_ms: float
    after: dict[str, Any]
    started_at: str
    progress: list[dict[str, Any]]


def merged(steps: list[Step]) -> dict[str, Any]:
    """One statement for stages finished in a row while their writes were held: each held
    stage's events as its own statement would have written them (its message, attempt and
    time), the row as the last stage leaves it, and every stage's timings.

    A held stage always chained the next (`finish(..., chain=True)`), so the row it would have
    left carried the next stage's start message and a first attempt."""
    *held, last = steps
    sets: dict[str, str] = {}
    params: dict[str, Any] = {}
    for step in steps:
        sets.update(step.outcome.sets)
        params.update(step.outcome.params)
    sets.update(last.after["sets"])
    params.update(last.after["params"])
    timings: dict[str, dict[str, Any]] = {}
    for step in steps:
        timings[step.stage.value] = {
            "started_at": step.started_at,
            "finished_at": step.after["params"]["finished_at"],
            "duration_ms": _json_number(step.elapsed_ms),
        }
    if "start_stage" in last.after["params"]:
        timings[last.after["params"]["start_stage"]] = {
            "started_at": last.after["params"]["started_at"]
        }
    # Each entry is whole (a start replaces its stage's entry, a finish completes it).
    sets["timings"] = "coalesce(timings, '{}'::jsonb) || CAST(:timings AS jsonb)"
    params["timings"] = jsontext.dumps(timings)
    events = [event for step in held for event in _as_written(step)]
    return {"sets": sets, "params": params, "events": events + last.after["events"]}


def _as_written(step: Step) -> list[repo.NewEvent]:
    params = step.after["params"]
    return [
        replace(
            event,
            message=params["start_message"] if event.message is None else event.message,
            data={"attempt": 1, **event.data} if event.with_attempt else event.data,
            with_attempt=False,
            at=params["finished_at"] if event.stage == step.stage.value else params["started_at"],
        )
        for event in step.after["events"]
    ]


def _json_number(value: float) -> float | int:
    """As PostgreSQL turns a double precision into JSON: 12.0 is 12."""
    return int(value) if float(value).is_integer() else value
