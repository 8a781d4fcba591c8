"""A task's stage completions held back while its chain runs fast, then committed together.

A document whose stages take milliseconds would otherwise pay a statement, a commit and a
publish for each stage. While less than HOLD_SECONDS have passed since the task's last commit,
a finished stage's writes (that chain into the next stage) wait in memory and go out with the
next completion, in one statement: one transaction for the row and all its events (DESIGN.md
invariant 2), each event as its own statement would have written it, stamped with the moment
it happened. What is held is committed before a failure is recorded, before live progress is
published, and by the lease keeper once the running stage has taken `background.SETTLE_AFTER`,
so a long stage shows its start as before. A worker lost meanwhile loses only uncommitted work:
its lease runs out and the reaper resumes from the last committed stage, as after a crash
mid-stage.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import replace
from typing import Any

from docflow.documents import stage_repository as repo
from docflow.models import Stage
from docflow.worker.background import publisher
from docflow.worker.committer import hot_transaction
from docflow.worker.transitions import Step, actor, merged

HOLD_SECONDS = 0.2


class Chain:
    """The stages one task runs for one document, and the completions it holds back."""

    def __init__(
        self, document_id: uuid.UUID, owner: str, claimed: repo.Transitioned, *, keep: bool = False
    ) -> None:
        self.document_id, self.owner = document_id, owner
        # The statement that finishes the document and claims the next may leave its
        # transaction open for the next one's (committer.hot_transaction).
        self.keep = keep
        self._lock = threading.Lock()
        self._held: list[Step] = []
        self._committed_at = time.monotonic()
        # Categorization's inputs as the last statement read them (the claim reads them).
        self._inputs = claimed if claimed.taxonomy is not None else None

    def hold(
        self, step: Step, state: repo.Transitioned, following: Stage
    ) -> repo.Transitioned | None:
        """Hold `step` (which chains into `following`) back if the chain runs fast: the state
        the next stage loads from; None when it is to be committed now."""
        with self._lock:
            if time.monotonic() - self._committed_at >= HOLD_SECONDS:
                return None
            inputs = self._inputs
            if following is Stage.CATEGORIZE and inputs is None:
                return None
            self._held.append(step)
        return repo.Transitioned(
            replace(state.doc, **step.outcome.state),
            [],
            inputs.taxonomy if inputs else None,
            inputs.model_head if inputs else None,
        )

    def commit(
        self,
        step: Step,
        *,
        categorize_inputs: bool,
        then: repo.Change | None = None,
        final: bool = False,
    ) -> tuple[repo.Transitioned | None, repo.Transitioned | None]:
        """Commit what is held and then `step`, in one statement (with `then`: the claim of
        the task's next document), and publish their events: (this document as it is now,
        None when the claim is gone; the next one as claimed, None when it was not). `final`:
        the document is done with (reached review); its state is not read back."""
        with self._lock:
            steps, self._held = [*self._held, step], []
            return self._write(steps, categorize_inputs, then, final)

    def flush(self) -> bool:
        """Commit what is held, and the transaction kept open, which may hold this document's
        claim (from any thread); False when the claim is gone."""
        with self._lock:
            if not self._held:
                publisher().release_kept()
                return True
            steps, self._held = self._held, []
            return self._write(steps, False, None, False)[0] is not None

    def _write(
        self, steps: list[Step], categorize_inputs: bool, then: repo.Change | None, final: bool
    ) -> tuple[repo.Transitioned | None, repo.Transitioned | None]:
        last = steps[-1]
        if len(steps) == 1:
            change: dict[str, Any] = {
                "sets": {**last.outcome.sets, **last.after["sets"]},
                "params": {**last.outcome.params, **last.after["params"]},
                "events": last.after["events"],
            }
        else:
            change = merged(steps)
        text = next((s.outcome.text for s in steps if s.outcome.text is not None), None)
        # Completes the stages (held at the first) and, when chaining, claims the next one.
        completion = repo.Change(
            self.document_id,
            steps[0].stage,
            self.owner,
            actor(),
            claim=False,
            **change,
            text_content=text,
            categorize_inputs=categorize_inputs,
            last=final,
        )
        following = None
        with hot_transaction(keep=self.keep and then is not None) as tx:
            if then is None:
                done = repo.transition(tx.conn, completion, begin=True)
            else:
                done, following = repo.transition_then_claim(tx.conn, completion, then, begin=True)
            if done is None:
                # The next document's claim goes out, once committed, with nothing of this one.
                tx.publish(following.events if following else [])
                return None, following
            self._committed_at = time.monotonic()
            self._inputs = done if done.taxonomy is not None else None
            # Each stage's last live progress, then its events, stage by stage; then the next
            # document's claim.
            payloads: list[dict[str, Any]] = []
            start = 0
            for step in steps:
                count = len(step.after["events"])
                payloads += step.progress + done.events[start : start + count]
                start += count
            tx.publish(payloads + (following.events if following else []))
        return done, following
