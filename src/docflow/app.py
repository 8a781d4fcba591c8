"""create_app(): routers, the error envelope, request ids, security headers, the event hub."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import request_response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from docflow import jobs
from docflow import logging as docflow_logging
from docflow.auth.router import router as auth_router
from docflow.categories.router import router as categories_router
from docflow.config import Settings, get_settings
from docflow.documents import intake
from docflow.documents.router import router as documents_router
from docflow.documents.router import upload as upload_endpoint
from docflow.errors import AppError
from docflow.events.hub import EventHub
from docflow.export.router import router as export_router
from docflow.gctune import tune_gc
from docflow.health.router import router as health_router
from docflow.metrics import install_api_metrics, install_publish_context
from docflow.ratelimit import RateLimitMiddleware
from docflow.review.router import router as review_router
from docflow.users.router import router as users_router

log = logging.getLogger("docflow.api")
API = "/api/v1"

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "service_unavailable",
}

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; "
        "base-uri 'self'; form-action 'self'"
    ),
}


def envelope(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"error": {"code": code, "message": message, "details": details or {}}},
        headers=headers,
    )


class RequestContext:
    """Gives every request an id (echoed as X-Request-ID) and adds the security headers."""

    def __init__(self, app: ASGIApp, tls: bool) -> None:
        self.app, self.tls = app, tls
        extra = dict(SECURITY_HEADERS)
        if tls:
            extra["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        # Encoded once: every response gets them (unless the route set its own).
        self.extra = [(name.lower().encode(), value.encode()) for name, value in extra.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode()[:64]
        request_id = incoming if incoming.replace("-", "").isalnum() else os.urandom(16).hex()
        scope.setdefault("state", {})["request_id"] = request_id
        token = docflow_logging.request_id_var.set(request_id)

        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                if b"x-request-id" not in present:
                    headers.append((b"x-request-id", request_id.encode()))
                headers.extend(h for h in self.extra if h[0] not in present)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # Caught here rather than by Starlette's outermost handler so the 500 still carries
            # the request id and the security headers.
            log.exception("unhandled error (request %s)", request_id)
            if started:
                raise
            await crash_response(request_id)(scope, receive, send_with_headers)
        finally:
            docflow_logging.request_id_var.reset(token)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> JSONResponse:
        return envelope(
            exc.status_code,
            exc.code,
            exc.message,
            exc.details,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid"}
        where = ".".join(str(p) for p in first["loc"][1:] or first["loc"])
        return envelope(
            422, "validation_error", f"Invalid request: {where}: {first['msg']}", {"errors": errors}
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        if exc.status_code == 404 and message == "Not Found":
            message = f"No such endpoint: {request.method} {request.url.path}"
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return envelope(exc.status_code, code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(IntegrityError)
    async def integrity_error(request: Request, exc: IntegrityError) -> JSONResponse:
        return envelope(409, "conflict", "The request conflicts with existing data; try again.")

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("dependency unavailable: %s", type(exc).__name__)
        return envelope(
            503,
            "service_unavailable",
            "The database is unavailable right now; try again shortly.",
            headers={"Retry-After": "5"},
        )

    for exc_type in (OperationalError, PoolTimeout, ConnectionError, OSError):
        app.add_exception_handler(exc_type, unavailable)

    @app.exception_handler(DBAPIError)
    async def dbapi_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return await unavailable(request, exc)
        # Text PostgreSQL cannot store (NUL, invalid encoding) is the client's input, not a crash.
        if getattr(exc.orig, "sqlstate", None) in {"22021", "22P05"}:
            return envelope(
                422, "validation_error", "The request contains characters that cannot be stored."
            )
        request_id = getattr(request.state, "request_id", None) or uuid.uuid4().hex
        log.error("database error (request %s)", request_id, exc_info=exc)
        return crash_response(request_id)


def crash_response(request_id: str) -> JSONResponse:
    return envelope(
        500,
        "internal_error",
        "Something went wrong on our side. Quote the request id if you report it.",
        {"request_id": request_id},
    )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    hub = EventHub(settings.redis_url, settings.events_channel, settings.sse_client_queue)
    app.state.hub = hub
    hub.start()
    # Build the task producer once, before requests race to create it from several threads.
    await anyio.to_thread.run_sync(jobs.sender)
    tune_gc()
    try:
        yield
    finally:
        await intake.flush()  # tasks still lingering for company go out before we stop
        await hub.stop()


Endpoint = Callable[[Request], Awaitable[Response]]


class Docflow(FastAPI):
    """FastAPI with express routes: a few hot exact paths (the upload) go straight to their
    endpoint behind the same middlewares and the same exception handlers, without FastAPI's
    own layers (server-error, telemetry and body-limit wrappers, the exit stack) and its
    route-by-route search through the routers. In-process, that was about a quarter of an
    upload's CPU. The routers still hold these routes (OpenAPI, a mounted root_path)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.express: dict[tuple[str, str], Endpoint] = {}
        self._express_apps: dict[tuple[str, str], ASGIApp] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            key = (scope["method"], scope["path"])
            if key in self.express:
                scope["app"] = self
                await self._express_app(key)(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    def _express_app(self, key: tuple[str, str]) -> ASGIApp:
        app = self._express_apps.get(key)
        if app is None:  # built on first use: every middleware is added by then
            handlers = {
                k: v for k, v in self.exception_handlers.items() if k not in (500, Exception)
            }
            app = ExceptionMiddleware(request_response(self.express[key]), handlers=handlers)
            for middleware in reversed(self.user_middleware):
                app = middleware.cls(app, *middleware.args, **middleware.kwargs)
            self._express_apps[key] = app
        return app


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    docflow_logging.setup(settings.log_level, settings.log_json)
    app = Docflow(
        title="Docflow",
        version="0.1.0",
        description="Documents from upload to export, every stage streamed live.",
        openapi_url=f"{API}/openapi.json",
        docs_url=f"{API}/docs",
        redoc_url=None,
        lifespan=lifespan,
        # No OpenTelemetry here: FastAPI would otherwise check for a provider on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    install_error_handlers(app)
    # FastAPI tries included routers in order, each route by route, more than once per
    # request: the busiest (documents: uploads and streams) and the cheapest-to-ask (health
    # probes) go first. The prefixes are disjoint, so the order changes nothing else.
    for router in (
        documents_router,
        health_router,
        auth_router,
        review_router,
        export_router,
        categories_router,
        users_router,
    ):
        app.include_router(router, prefix=API)
    app.express[("POST", f"{API}/documents")] = upload_endpoint
    # Before the UI's catch-all route, so /metrics is not served as a page.
    install_api_metrics(app)
    install_publish_context()
    if settings.ui_dir and Path(settings.ui_dir).is_dir():
        mount_ui(app, Path(settings.ui_dir))
    app.add_middleware(RateLimitMiddleware, settings=settings)
    if settings.cors_origins:  # closed by default: the UI is served from the same origin
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Idempotency-Key",
                "Last-Event-ID",
                "X-CSRF-Token",
                "X-Request-ID",
            ],
            expose_headers=["Retry-After", "X-Request-ID", "Location"],
        )
    app.add_middleware(RequestContext, tls=settings.cookie_secure)
    return app


def mount_ui(app: FastAPI, root: Path) -> None:
    """Serve the statically exported UI when no nginx is in front (make run)."""
    root = root.resolve()

    @app.get("/{path:path}", include_in_schema=False)
    async def ui(path: str) -> Response:
        if path.startswith("api/"):
            return envelope(404, "not_found", f"No such endpoint: GET /{path}")
        for candidate in (root / path, root / f"{path}.html", root / path / "index.html"):
            resolved = candidate.resolve()
            if resolved.is_file() and resolved.is_relative_to(root):
                return FileResponse(resolved)
        fallback = root / "404.html"
        return FileResponse(
            fallback if fallback.is_file() else root / "index.html", status_code=404
        )
