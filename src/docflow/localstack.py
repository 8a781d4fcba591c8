"""`docflow run`: the whole stack as child processes on this machine, no Docker.

PostgreSQL and Redis come from DATABASE_URL / REDIS_URL when set, else embedded ones keep their
data under ./var/. Every child's output is prefixed with its name; Ctrl-C stops them all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from docflow.embedded import EmbeddedPostgres, EmbeddedRedis

VAR = Path(os.environ.get("DOCFLOW_VAR_DIR", "var"))
COLOURS = {"api": 36, "worker": 32, "beat": 35, "flower": 34, "stack": 33}


def say(name: str, line: str) -> None:
    colour = COLOURS.get(name, 37)
    prefix = f"\033[{colour}m{name:>7} |\033[0m " if sys.stdout.isatty() else f"{name:>7} | "
    sys.stdout.write(prefix + line.rstrip("\n") + "\n")
    sys.stdout.flush()


def _pump(name: str, proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        say(name, line)


def run_stack(host: str, port: int, concurrency: int) -> int:
    VAR.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    servers: list[EmbeddedPostgres | EmbeddedRedis] = []
    children: dict[str, subprocess.Popen[str]] = {}
    stopping = threading.Event()

    def stop(*_: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        if not env.get("DATABASE_URL"):
            pg = EmbeddedPostgres(VAR / "postgres")
            env["DATABASE_URL"] = pg.start()
            servers.append(pg)
            say("stack", f"embedded PostgreSQL in {VAR / 'postgres'}")
        if not env.get("REDIS_URL"):
            rd = EmbeddedRedis(VAR / "redis", port=int(env.get("DOCFLOW_REDIS_PORT", "6390")))
            env["REDIS_URL"] = rd.start()
            servers.append(rd)
            say("stack", f"embedded Redis on {env['REDIS_URL']} (data in {VAR / 'redis'})")
        ui = Path("frontend/out")
        if ui.is_dir() and "DOCFLOW_UI_DIR" not in env:
            env["DOCFLOW_UI_DIR"] = str(ui.resolve())
        python = sys.executable
        subprocess.run([python, "-m", "docflow.cli", "migrate"], env=env, check=True)
        _first_admin(python, env)
        commands = {
            "api": [python, "-m", "docflow.cli", "api", "--host", host, "--port", str(port)],
            "worker": [python, "-m", "docflow.cli", "worker", "-c", str(concurrency)],
            "beat": [python, "-m", "docflow.cli", "beat"],
        }
        for name, argv in commands.items():
            children[name] = subprocess.Popen(
                argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                start_new_session=True,
            )
            threading.Thread(target=_pump, args=(name, children[name]), daemon=True).start()
        if _wait_ready(f"http://{host}:{port}/api/v1/health/ready", stopping, children):
            say("stack", f"Docflow is ready: http://{host}:{port}/  (API docs: /api/v1/docs)")
        while not stopping.is_set():
            for name, child in children.items():
                if child.poll() is not None:
                    say("stack", f"{name} exited with {child.returncode}; stopping everything")
                    stopping.set()
            stopping.wait(0.5)
        return 0
    finally:
        say("stack", "stopping…")
        for child in children.values():
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for child in children.values():
            try:
                child.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
        for server in reversed(servers):
            server.stop()
        say("stack", "stopped")


def _first_admin(python: str, env: dict[str, str]) -> None:
    email, password = env.get("DOCFLOW_ADMIN_EMAIL"), env.get("DOCFLOW_ADMIN_PASSWORD")
    if email and password:
        result = subprocess.run(
            [python, "-m", "docflow.cli", "users", "create", "--email", email,
             "--password", password, "--role", "admin"],
            env=env, capture_output=True, text=True,
        )
        message = (result.stdout or result.stderr).strip()
        say("stack", message if result.returncode == 0 else f"admin {email}: {message}")
    else:
        say("stack", "no DOCFLOW_ADMIN_EMAIL/DOCFLOW_ADMIN_PASSWORD set; create a user with: "
                     "docflow users create --email you@example.com --role admin")


def _wait_ready(url: str, stopping: threading.Event,
                children: dict[str, subprocess.Popen[str]]) -> bool:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not stopping.is_set():
        if any(c.poll() is not None for c in children.values()):
            return False
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False

