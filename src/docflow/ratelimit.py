"""Rate limits in the app (the edge limits live in nginx): per IP and per user, in Redis.

Four budgets, each counted apart: `login` (per IP, plus failed attempts per account against
brute force), `upload`, `read` (GET/HEAD) and `write` (any other unsafe request). The per-IP
check runs as ASGI middleware, before any work is done; the per-user check runs once the user
is known (deps.current_user), so an API token and a browser session of one person share it.

Counters live in Redis under `<namespace>:ratelimit`. Redis is a hint (DESIGN.md §2): when it
is unreachable, requests are let through rather than refused.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Literal

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from docflow.config import Settings
from docflow.errors import AppError

log = logging.getLogger(__name__)

Budget = Literal["login", "upload", "read", "write"]
Scope_ = Literal["ip", "user", "account"]
API = "/api/v1"


class RateLimited(AppError):
    status_code, code = 429, "rate_limited"

    def __init__(self, message: str, *, retry_after: int, details: dict[str, Any]) -> None:
        super().__init__(message, details={**details, "retry_after": retry_after})
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


def classify(method: str, path: str) -> Budget | None:
    """Which budget a request spends; None for requests that are never limited."""
    if not path.startswith(f"{API}/") or path.startswith(f"{API}/health"):
        return None
    method = method.upper()
    if method == "OPTIONS":
        return None
    if method == "POST" and path.rstrip("/") == f"{API}/auth/login":
        return "login"
    if method == "POST" and path.rstrip("/") == f"{API}/documents":
        return "upload"
    if method in {"GET", "HEAD"}:
        return "read"
    return "write"


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    retry_after: int


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.enabled = settings.rate_limits_enabled
        self._strategy: SlidingWindowCounterRateLimiter | None = None
        self._items: dict[str, RateLimitItem] = {}
        self._last_warning = 0.0

    def item(self, budget: str, scope: Scope_) -> RateLimitItem:
        name = f"rate_limit_{budget}_{scope}"
        if name not in self._items:
            self._items[name] = parse(str(getattr(self.settings, name)))
        return self._items[name]

    @property
    def strategy(self) -> SlidingWindowCounterRateLimiter:
        # Built on first use, inside the event loop that will use its connections.
        if self._strategy is None:
            storage = RedisStorage(
                f"async+{self.settings.redis_url}",
                implementation="redispy",
                key_prefix=f"{self.settings.redis_namespace}:ratelimit",
                wrap_exceptions=True,
                socket_timeout=2,
                socket_connect_timeout=2,
            )
            self._strategy = SlidingWindowCounterRateLimiter(storage)
        return self._strategy

    async def hit(self, budget: str, scope: Scope_, identity: str) -> Verdict:
        """Spend one unit; says whether it was allowed and, if not, when to come back."""
        if not self.enabled:
            return Verdict(True, 0)
        item = self.item(budget, scope)
        try:
            if await self.strategy.hit(item, budget, scope, identity):
                return Verdict(True, 0)
            return Verdict(False, await self._retry_after(item, budget, scope, identity))
        except Exception:  # Redis is a hint: without it, serve rather than refuse
            self._warn()
            return Verdict(True, 0)

    async def test(self, budget: str, scope: Scope_, identity: str) -> Verdict:
        """Whether one more unit would be allowed, without spending it."""
        if not self.enabled:
            return Verdict(True, 0)
        item = self.item(budget, scope)
        try:
            if await self.strategy.test(item, budget, scope, identity):
                return Verdict(True, 0)
            return Verdict(False, await self._retry_after(item, budget, scope, identity))
        except Exception:
            self._warn()
            return Verdict(True, 0)

    async def _retry_after(self, item: RateLimitItem, *ids: str) -> int:
        stats = await self.strategy.get_window_stats(item, *ids)
        return max(1, math.ceil(stats.reset_time - time.time()))

    def _warn(self) -> None:
        now = time.monotonic()
        if now - self._last_warning > 30:
            self._last_warning = now
            log.warning("rate limiter unavailable (Redis); requests are not being limited")


_limiters: dict[tuple[str, str, bool], RateLimiter] = {}


def limiter_for(settings: Settings) -> RateLimiter:
    key = (settings.redis_url, settings.redis_namespace, settings.rate_limits_enabled)
    if key not in _limiters:
        _limiters[key] = RateLimiter(settings)
    return _limiters[key]


def refusal(budget: str, scope: Scope_, verdict: Verdict) -> RateLimited:
    what = {
        "login": "sign-in attempts",
        "upload": "uploads",
        "read": "requests",
        "write": "changes",
    }[budget]
    who = {"ip": "from this address", "user": "for this account", "account": "for this account"}[
        scope
    ]
    return RateLimited(
        f"Too many {what} {who}; try again in {verdict.retry_after} s.",
        retry_after=verdict.retry_after,
        details={"budget": budget, "scope": scope},
    )


async def check_user(settings: Settings, method: str, path: str, user_id: str) -> None:
    """The per-user budget of this request (login has none: it has no user yet)."""
    budget = classify(method, path)
    if budget is None or budget == "login":
        return
    verdict = await limiter_for(settings).hit(budget, "user", user_id)
    if not verdict.allowed:
        raise refusal(budget, "user", verdict)


async def guard_login(settings: Settings, email: str) -> None:
    """Refuse sign-in for an account that has had too many failed attempts lately."""
    verdict = await limiter_for(settings).test("login", "account", email.strip().lower())
    if not verdict.allowed:
        raise refusal("login", "account", verdict)


async def login_failed(settings: Settings, email: str) -> None:
    await limiter_for(settings).hit("login", "account", email.strip().lower())


class RateLimitMiddleware:
    """The per-IP budgets, checked before routing so a flood costs as little as possible."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.settings.rate_limits_enabled:
            await self.app(scope, receive, send)
            return
        budget = classify(scope["method"], scope["path"])
        client = scope.get("client")
        if budget is not None and client:
            verdict = await limiter_for(self.settings).hit(budget, "ip", str(client[0]))
            if not verdict.allowed:
                error = refusal(budget, "ip", verdict)
                body = {
                    "error": {
                        "code": error.code,
                        "message": error.message,
                        "details": error.details,
                    }
                }
                response = JSONResponse(body, status_code=error.status_code, headers=error.headers)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
