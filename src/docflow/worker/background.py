"""A worker process's two background threads: the event publisher and the lease keeper.

Each starts on first use in the process that uses it (a forked pool child starts its own).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from docflow.db import sync_session_factory
from docflow.documents import stage_repository as repo
from docflow.events.publisher import publish_sync

log = logging.getLogger(__name__)


class _PerProcess(Protocol):
    pid: int


T = TypeVar("T", bound=_PerProcess)


class Committing(Protocol):
    """A transaction whose COMMIT is on its way (worker/committer.py)."""

    payloads: list[dict[str, Any]]

    def settle(self) -> str | None: ...


class Keepable(Protocol):
    """A transaction kept open between documents (worker/committer.py): `commit` sends its
    COMMIT and gives what is to be waited for."""

    def commit(self) -> Committing: ...


class _Publisher:
    """Publishes this process's committed events from a thread of its own, in commit order.

    A task hands its events over right after each commit and goes on with the next stage
    instead of waiting for Redis; whatever piles up meanwhile goes out in one pipeline. Never
    before the commit (DESIGN.md invariant 2), and no later than it takes the thread to run:
    a worker cut off right after a commit loses no more than one that published in line. A
    transaction whose COMMIT was sent without waiting (`after_commit`) is waited for here, in
    turn, and its events go out once it has committed; if it has not, they never do, and the
    task hears of it (`failure`).

    It also holds the one transaction the process may keep open between two documents
    (`keep`): whoever waits for this process's COMMITs, or drains its events, first sends that
    one's COMMIT, so nothing outside it waits on its locks or misses what it wrote. `kept_lock`
    is held by a thread running a statement of the stage path, kept transaction or not.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._cond = threading.Condition()
        self._items: list[dict[str, Any] | Committing] = []
        self._busy = False  # the thread is settling or publishing a batch
        self._helping = False  # a caller of wait_committed is settling one (see there)
        self._thread: threading.Thread | None = None
        self._failure: str | None = None
        self._handed = self._settled = 0  # COMMITs handed over, and settled, so far
        self.kept_lock = threading.RLock()
        self._kept: Keepable | None = None

    def keep(self, tx: Keepable) -> None:
        """Hold `tx` open for the next hot transaction (the caller holds `kept_lock`)."""
        self._kept = tx

    def take_kept(self) -> Keepable | None:
        """The transaction kept open, for the caller (holding `kept_lock`) to go on in."""
        kept, self._kept = self._kept, None
        return kept

    def release_kept(self) -> None:
        """Send the kept transaction's COMMIT, if one is kept; its events follow it as usual."""
        with self.kept_lock:
            kept, self._kept = self._kept, None
            if kept is not None:
                self.after_commit(kept.commit())

    def publish(self, payloads: list[dict[str, Any]]) -> None:
        if not payloads:
            return
        self._add(payloads)

    def after_commit(self, pending: Committing) -> None:
        """Publish `pending`'s events once its COMMIT has succeeded."""
        with self._cond:
            self._handed += 1
        self._add([pending])

    def wait_committed(self, timeout: float = 60.0) -> None:
        """Until every COMMIT handed over so far has settled: a statement that reads what one
        of them wrote must not start before it is visible (its snapshot would miss it).

        The caller settles what the thread has not taken yet itself, in order, and leaves the
        events to the thread: a worker busy computing holds the GIL, and the thread, woken by
        the COMMIT's answer, would wait for it up to a switch interval (5 ms) before it could
        settle, while the worker's next statement waited for the thread."""
        self.release_kept()
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self._handed
            if self._settled >= target:
                return
            batch = None
            if self._items and not self._helping:
                batch, self._items, self._helping = self._items, [], True
        if batch is not None:
            payloads: list[dict[str, Any]] = []
            try:
                payloads = self._committed(batch)
            except Exception:
                log.warning("settling COMMITs failed", exc_info=True)
            finally:
                with self._cond:
                    self._items[:0] = payloads
                    self._helping = False
                    self._cond.notify_all()
        with self._cond:
            while self._settled < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)

    def failure(self, *, clear: bool = False) -> str | None:
        """What became of a COMMIT that failed (None: none did); `clear`: forget it."""
        with self._cond:
            failure = self._failure
            if clear:
                self._failure = None
            return failure

    def _add(self, items: list[Any]) -> None:
        with self._cond:
            self._items.extend(items)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="publisher")
                self._thread.start()
            self._cond.notify_all()

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until everything handed over has been sent (before another path publishes,
        and before a task ends: a worker shutting down takes nothing unsent with it)."""
        self.release_kept()
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._items or self._busy or self._helping:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._items or self._helping:
                    self._cond.wait()
                batch, self._items, self._busy = self._items, [], True
            try:
                publish_sync(self._committed(batch))
            except Exception:  # never let the thread die; the log replays what was missed
                log.warning("event publish failed", exc_info=True)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _committed(self, batch: list[dict[str, Any] | Committing]) -> list[dict[str, Any]]:
        """The batch's events, in order, once the COMMITs among them have settled."""
        payloads: list[dict[str, Any]] = []
        for item in batch:
            if isinstance(item, dict):
                payloads.append(item)
                continue
            failure = item.settle()
            if failure is None:
                payloads += item.payloads
            else:
                log.warning("a stage transition did not commit (%s); its task retries", failure)
            with self._cond:
                self._settled += 1
                self._failure = failure or self._failure
                self._cond.notify_all()
        return payloads


_publishers: list[_Publisher] = []


def publisher() -> _Publisher:
    return _this_process(_publishers, _Publisher)


class Heartbeat:
    """Extends the lease while the stage works and notices when the claim is gone.

    One keeper thread per process beats for every stage it runs, and only for stages that run
    longer than a third of the lease: most stages take milliseconds and cost no thread and no
    statement."""

    def __init__(
        self,
        document_id: uuid.UUID,
        owner: str,
        lease: int,
        settle: Callable[[], bool] | None = None,
    ) -> None:
        self.document_id, self.owner, self.lease = document_id, owner, lease
        self.lost = threading.Event()
        self.due = 0.0
        # Commits what the task holds back (held.Chain.flush; False: the claim is gone),
        # once the stage has run a while: a stage that takes long shows its start meanwhile.
        self.settle = settle or _settled
        self.settle_due = time.monotonic() + SETTLE_AFTER if settle else float("inf")

    def __enter__(self) -> Heartbeat:
        _keeper().add(self)
        return self

    def __exit__(self, *_: object) -> None:
        _keeper().discard(self)

    def beat(self) -> None:
        publisher().wait_committed()  # the claim this lease came with is visible by now
        try:
            with sync_session_factory()() as session:
                still_ours = repo.extend_lease(session, self.document_id, self.owner, self.lease)
                session.commit()
        except Exception:  # a blip: the lease has slack for two more beats
            log.warning("lease heartbeat failed for %s", self.document_id)
            return
        if not still_ours:
            self.lost.set()

    def settle_held(self) -> None:
        """Commit and publish what the task holds back (any thread; at once if nothing is)."""
        self.settle_due = float("inf")
        try:
            if not self.settle():
                self.lost.set()
        except Exception:  # a blip: the task commits it with its next statement
            log.warning("holding back %s: commit failed", self.document_id, exc_info=True)


def _settled() -> bool:
    return True


# How long a stage runs before what its task held back is committed without waiting for it
# (by the stage's own progress report, or by the lease keeper's next tick).
SETTLE_AFTER = 0.02


class _LeaseKeeper:
    TICK = 0.1

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._beats: dict[int, Heartbeat] = {}
        self._thread: threading.Thread | None = None

    def add(self, heartbeat: Heartbeat) -> None:
        heartbeat.due = time.monotonic() + _interval(heartbeat.lease)
        with self._lock:
            self._beats[id(heartbeat)] = heartbeat
        self.start()

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, daemon=True, name="lease-heartbeat"
                )
                self._thread.start()

    def discard(self, heartbeat: Heartbeat) -> None:
        with self._lock:
            self._beats.pop(id(heartbeat), None)

    def _run(self) -> None:
        while True:
            time.sleep(self.TICK)
            now = time.monotonic()
            with self._lock:
                beats = list(self._beats.values())
            for heartbeat in beats:
                if heartbeat.settle_due <= now:
                    heartbeat.settle_held()
            for heartbeat in beats:
                if heartbeat.due <= now and not heartbeat.lost.is_set():
                    heartbeat.beat()
                    heartbeat.due = time.monotonic() + _interval(heartbeat.lease)


def _interval(lease: int) -> float:
    return max(lease / 3, 0.5)


_keepers: list[_LeaseKeeper] = []


def _keeper() -> _LeaseKeeper:
    return _this_process(_keepers, _LeaseKeeper)


def _this_process(held: list[T], make: Callable[[], T]) -> T:
    """The one `make()` of this process: a forked pool child starts its own (threads do not
    survive a fork)."""
    if not held or held[0].pid != os.getpid():
        held[:] = [make()]
    return held[0]
