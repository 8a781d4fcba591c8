"""Logging setup: plain lines for a terminal, JSON (structlog) when DOCFLOW_LOG_JSON is set."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

import structlog

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
# Set by the API for /documents/{id} routes and by the worker around each task, so one grep for a
# document id or a task id finds every line about it, on either side of the queue.
document_id_var: ContextVar[str | None] = ContextVar("document_id", default=None)
task_id_var: ContextVar[str | None] = ContextVar("task_id", default=None)


class _RequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        record.document_id = document_id_var.get() or "-"
        record.task_id = task_id_var.get() or "-"
        return True


def setup(level: str = "INFO", json_logs: bool = False) -> None:
    root = logging.getLogger()
    if getattr(root, "_docflow_configured", False):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestId())
    if json_logs:
        handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.JSONRenderer(),
                ],
                foreign_pre_chain=[
                    structlog.stdlib.add_log_level,
                    structlog.stdlib.add_logger_name,
                    structlog.processors.TimeStamper(fmt="iso"),
                    structlog.stdlib.ExtraAdder(),
                ],
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    root.handlers[:] = [handler]
    root.setLevel(level)
    root._docflow_configured = True  # type: ignore[attr-defined]
