"""Prometheus metrics for the API (`/metrics`) and the worker (its own small HTTP server).

API: requests by route and status, request latency, open event streams, queue depth per queue,
and the pipeline's failures/retries/stage durations read from PostgreSQL (the truth, shared by
every API process, so any replica reports the same numbers).
Worker: task outcomes and stage durations, collected across prefork children through
prometheus_client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by `docflow worker`).
Both sides also carry the request id, document id and task id into the logs across the queue.
"""

from __future__ import annotations

import logging
import os
import re
import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from docflow import logging as docflow_logging
from docflow.config import get_settings

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)


def _queues() -> tuple[str, ...]:
    return ("documents", get_settings().heavy_queue, "maintenance")


STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_DOC_PATH = re.compile(rf"^/api/v1/(?:documents|review)/({_UUID})")
_ID_SEGMENT = re.compile(rf"/{_UUID}")

# --- API side -------------------------------------------------------------------------------

API_REGISTRY = CollectorRegistry(auto_describe=True)
HTTP_REQUESTS = Counter(
    "docflow_http_requests",
    "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
    registry=API_REGISTRY,
)
HTTP_LATENCY = Histogram(
    "docflow_http_request_duration_seconds",
    "Time to the first response byte.",
    ["method", "route"],
    registry=API_REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


# A request's series, looked up once per label set: prometheus_client's labels() takes a lock
# and checks the values on every call. Label sets are few (route_of folds ids).
@lru_cache(maxsize=2048)
def _latency(method: str, route: str) -> Any:
    return HTTP_LATENCY.labels(method, route)


@lru_cache(maxsize=2048)
def _requests(method: str, route: str, status: int) -> Any:
    return HTTP_REQUESTS.labels(method, route, str(status))


def route_of(path: str) -> str:
    """Keep label cardinality bounded: ids become {id}, the UI's paths become one label."""
    if not path.startswith("/api/"):
        return "ui"
    return _ID_SEGMENT.sub("/{id}", path)


def document_of(path: str) -> str | None:
    match = _DOC_PATH.match(path)
    return match.group(1) if match else None


class MetricsMiddleware:
    """Counts and times every request, and puts the document id in the logging context."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/metrics":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        route, method = route_of(path), scope["method"]
        token = docflow_logging.document_id_var.set(document_of(path))
        started = time.perf_counter()
        status = 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                # Streams stay open for hours: their latency is the time to the first byte.
                _latency(method, route).observe(time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            _requests(method, route, status).inc()
            docflow_logging.document_id_var.reset(token)


class PipelineCollector:
    """Gauges read at scrape time: open streams in this process, broker queue depth, and
    pipeline outcomes from PostgreSQL (so they survive restarts and agree across replicas)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.snapshot: dict[str, Any] = {}

    def collect(self) -> list[Metric]:
        metrics: list[Metric] = []
        hub = getattr(self.app.state, "hub", None)
        streams = GaugeMetricFamily(
            "docflow_open_streams", "Server-Sent Event streams open in this API process."
        )
        streams.add_metric([], float(hub.subscriber_count if hub is not None else 0))
        metrics.append(streams)
        depth = GaugeMetricFamily(
            "docflow_queue_depth", "Tasks waiting in the broker, by queue.", labels=["queue"]
        )
        for queue, value in self.snapshot.get("queues", {}).items():
            depth.add_metric([queue], float(value))
        metrics.append(depth)
        events = CounterMetricFamily(
            "docflow_pipeline_events",
            "Pipeline events recorded (stage.failed = failures, "
            "stage.retry/stage.requeued = retries), from the audit log.",
            labels=["type"],
        )
        for kind, value in self.snapshot.get("events", {}).items():
            events.add_metric([kind], float(value))
        metrics.append(events)
        docs = GaugeMetricFamily("docflow_documents", "Documents by status.", labels=["status"])
        for status, value in self.snapshot.get("statuses", {}).items():
            docs.add_metric([status], float(value))
        metrics.append(docs)
        stage = GaugeMetricFamily(
            "docflow_stage_duration_seconds_avg",
            "Mean stage duration over the last hour's completed stages.",
            labels=["stage"],
        )
        for name, value in self.snapshot.get("stages", {}).items():
            stage.add_metric([name], float(value))
        metrics.append(stage)
        return metrics


async def _snapshot() -> dict[str, Any]:
    from sqlalchemy import text

    from docflow.db import async_engine
    from docflow.events.publisher import async_client

    settings = get_settings()
    result: dict[str, Any] = {"queues": {}, "events": {}, "statuses": {}, "stages": {}}
    try:
        for queue in _queues():
            # Celery's Redis transport keeps each queue as a list under the key prefix.
            result["queues"][queue] = await async_client().llen(
                f"{settings.redis_namespace}:{queue}"
            )
    except Exception:
        log.warning("metrics: queue depth unavailable")
    try:
        async with async_engine().connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT type, count(*) FROM document_events WHERE type IN "
                    "('stage.failed','stage.retry','stage.requeued','document.failed',"
                    "'stage.completed','document.uploaded') GROUP BY type"
                )
            )
            result["events"] = {str(kind): int(count) for kind, count in rows}
            rows = await conn.execute(
                text("SELECT status, count(*) FROM documents GROUP BY status")
            )
            result["statuses"] = {str(status): int(count) for status, count in rows}
            rows = await conn.execute(
                text(
                    "SELECT stage, avg((data->>'duration_ms')::float) / 1000 FROM document_events "
                    "WHERE type = 'stage.completed' AND created_at > now() - interval '1 hour' "
                    "AND data ? 'duration_ms' GROUP BY stage"
                )
            )
            result["stages"] = {stage: value for stage, value in rows if stage}
    except Exception:
        log.warning("metrics: database figures unavailable")
    return result


def install_api_metrics(app: FastAPI) -> None:
    """Mount GET /metrics (Prometheus text format) and the request-counting middleware."""
    from fastapi import Response

    collector = PipelineCollector(app)
    registry = CollectorRegistry()
    registry.register(collector)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        collector.snapshot = await _snapshot()
        body = generate_latest(API_REGISTRY) + generate_latest(registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(MetricsMiddleware)


# --- request id across the queue -------------------------------------------------------------


def _before_publish(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Stamp each outgoing task with the request (or parent task) that caused it."""
    if headers is None:
        return
    origin = docflow_logging.request_id_var.get()
    if origin and "docflow_request_id" not in headers:
        headers["docflow_request_id"] = origin


def install_publish_context() -> None:
    from celery.signals import before_task_publish

    before_task_publish.connect(_before_publish, weak=False)


# --- worker side -----------------------------------------------------------------------------

_worker_metrics: dict[str, Any] = {}
_task_started: dict[str, tuple[float, list[Any]]] = {}


def _worker_instruments() -> dict[str, Any]:
    if not _worker_metrics:
        _worker_metrics.update(
            tasks=Counter(
                "docflow_worker_tasks",
                "Stage tasks finished, by task and outcome.",
                ["task", "outcome"],
            ),
            duration=Histogram(
                "docflow_worker_stage_duration_seconds",
                "Wall time of each stage task.",
                ["stage"],
                buckets=STAGE_BUCKETS,
            ),
            running=Gauge(
                "docflow_worker_tasks_running", "Tasks running now.", multiprocess_mode="livesum"
            ),
        )
    return _worker_metrics


def _prerun(task_id: str | None = None, task: Any = None, args: Any = None, **_: Any) -> None:
    docflow_logging.task_id_var.set(task_id)
    docflow_logging.document_id_var.set(str(args[0]) if args else None)
    origin = getattr(getattr(task, "request", None), "docflow_request_id", None)
    docflow_logging.request_id_var.set(origin or task_id)
    _task_started[task_id or ""] = (time.perf_counter(), [])
    _worker_instruments()["running"].inc()


def _postrun(
    task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any
) -> None:
    name = getattr(task, "name", "unknown")
    started = _task_started.pop(task_id or "", None)
    metrics = _worker_instruments()
    metrics["running"].dec()
    if started is not None and name.startswith("documents.") and name != "documents.reap":
        metrics["duration"].labels(name.split(".", 1)[1]).observe(time.perf_counter() - started[0])
    metrics["tasks"].labels(name, (state or "unknown").lower()).inc()
    for var in (
        docflow_logging.task_id_var,
        docflow_logging.document_id_var,
        docflow_logging.request_id_var,
    ):
        var.set(None)


def _retry(request: Any = None, **_: Any) -> None:
    name = getattr(request, "task", None) or "unknown"
    _worker_instruments()["tasks"].labels(name, "retry_scheduled").inc()


def _child_exit(pid: int | None = None, **_: Any) -> None:
    from prometheus_client import multiprocess

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]


def install_worker_signals() -> None:
    from celery.signals import task_postrun, task_prerun, task_retry, worker_process_shutdown

    task_prerun.connect(_prerun, weak=False)
    task_postrun.connect(_postrun, weak=False)
    task_retry.connect(_retry, weak=False)
    worker_process_shutdown.connect(_child_exit, weak=False)
    install_publish_context()


def serve_worker_metrics(port: int) -> None:
    """Expose every prefork child's metrics on one port from the worker's main process."""
    from prometheus_client import multiprocess, start_http_server

    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    start_http_server(
        port, addr=os.environ.get("DOCFLOW_WORKER_METRICS_HOST", "127.0.0.1"), registry=registry
    )
