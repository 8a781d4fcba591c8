"""The document state machine (DESIGN.md §3), shared by review actions and the worker."""

from __future__ import annotations

from enum import StrEnum

from docflow.errors import InvalidTransition
from docflow.models import STAGES, Document, Stage, Status


class Action(StrEnum):
    START = "start"
    FINISH = "finish"  # the pipeline's last stage completed
    FAIL = "fail"
    APPROVE = "approve"
    REJECT = "reject"
    REPROCESS = "reprocess"


ALLOWED: dict[Action, tuple[set[Status], Status]] = {
    Action.START: ({Status.UPLOADED, Status.PROCESSING}, Status.PROCESSING),
    Action.FINISH: ({Status.PROCESSING}, Status.REVIEW),
    Action.FAIL: ({Status.UPLOADED, Status.PROCESSING}, Status.FAILED),
    Action.APPROVE: ({Status.REVIEW}, Status.FINALISED),
    Action.REJECT: ({Status.REVIEW, Status.PROCESSING, Status.UPLOADED}, Status.REJECTED),
    Action.REPROCESS: ({Status.REVIEW, Status.FAILED, Status.REJECTED}, Status.PROCESSING),
}

TERMINAL = {Status.FINALISED, Status.REJECTED, Status.FAILED}

# Overall progress at the start of each stage; a stage's own progress fills its band.
STAGE_BANDS: dict[Stage, tuple[int, int]] = {
    Stage.VALIDATE: (0, 10),
    Stage.EXTRACT: (10, 60),
    Stage.ANALYZE: (60, 85),
    Stage.CATEGORIZE: (85, 100),
}

STAGE_VERBS: dict[Stage, str] = {
    Stage.VALIDATE: "Checking the file",
    Stage.EXTRACT: "Extracting text",
    Stage.ANALYZE: "Analysing the content",
    Stage.CATEGORIZE: "Choosing a category",
}


def target(doc: Document, action: Action) -> Status:
    """The status `action` leads to from the document's status, or 409 invalid_transition."""
    sources, to = ALLOWED[action]
    if Status(doc.status) not in sources:
        allowed = sorted(a.value for a, (src, _) in ALLOWED.items() if Status(doc.status) in src)
        raise InvalidTransition(
            f"A document that is {doc.status} cannot be {_past(action)}.",
            details={"status": doc.status, "action": action.value, "allowed": allowed},
        )
    return to


def next_stage(stage: Stage) -> Stage | None:
    index = STAGES.index(stage)
    return STAGES[index + 1] if index + 1 < len(STAGES) else None


def overall_progress(stage: Stage, done: int = 0, total: int = 1) -> int:
    low, high = STAGE_BANDS[stage]
    fraction = min(max(done / total, 0.0), 1.0) if total > 0 else 0.0
    return int(low + (high - low) * fraction)


def _past(action: Action) -> str:
    return {
        Action.START: "started",
        Action.FINISH: "sent to review",
        Action.FAIL: "failed",
        Action.APPROVE: "approved",
        Action.REJECT: "rejected",
        Action.REPROCESS: "reprocessed",
    }[action]
