"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from docflow.health import service as health

router = APIRouter(prefix="/health", tags=["health"])


@router.get("")
async def live() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "A dependency is down"}})
async def ready() -> JSONResponse:
    """PostgreSQL, Redis and at least one live worker; 503 names what is down."""
    checks: dict[str, Any] = await health.readiness()
    ok = all(c["ok"] for c in checks.values())
    if ok:
        return JSONResponse({"status": "ready", "checks": checks})
    down = [name for name, c in checks.items() if not c["ok"]]
    return JSONResponse(
        status_code=503,
        content={
            "error": {
                "code": "service_unavailable",
                "message": f"Not ready: {', '.join(down)} unavailable.",
                "details": {"checks": checks},
            }
        },
    )
