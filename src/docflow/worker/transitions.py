"""What each state change of the stage path writes: the columns, parameters and events that
`stage_repository.transition` turns into one statement."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from typing import Any

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
        "lease_until": "now() + make_interval(secs => :lease)",
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
                "enqueued_at": "now()",
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
        "sets": {**begun["sets"], "timings": timings, "enqueued_at": "now()"},
        "params": {**params, **begun["params"]},
        "events": [completed, *begun["events"]],
    }


def iso() -> str:
    return datetime.now(UTC).isoformat()
