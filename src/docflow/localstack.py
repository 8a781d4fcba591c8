"""`docflow run`: the whole stack as child processes on this machine, no Docker.

PostgreSQL and Redis come from DATABASE_URL / REDIS_URL when set, else embedded ones keep their
data under ./var/ (DOCFLOW_VAR_DIR). The UI is built on first run when node is present. Every
child's output is prefixed with its name; Ctrl-C stops them all, servers included.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from docflow.embedded import EmbeddedPostgres, EmbeddedRedis

COLOURS = {"api": 36, "worker": 32, "beat": 35, "flower": 34, "stack": 33, "ui": 90}
FRONTEND = Path("frontend")
_out_lock = threading.Lock()


def var_dir() -> Path:
    return Path(os.environ.get("DOCFLOW_VAR_DIR", "var"))


def say(name: str, line: str) -> None:
    colour = COLOURS.get(name, 37)
    prefix = f"\033[{colour}m{name:>7} |\033[0m " if sys.stdout.isatty() else f"{name:>7} | "
    with _out_lock:
        sys.stdout.write(prefix + line.rstrip("\n") + "\n")
        sys.stdout.flush()


def _pump(name: str, proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        say(name, line)


def _newest_source(root: Path) -> float:
    skip = {"node_modules", "out", ".next"}
    newest = 0.0
    for path in root.rglob("*"):
        if skip.intersection(path.relative_to(root).parts[:1]):
            continue
        if path.is_file():
            newest = max(newest, path.stat().st_mtime)
    return newest


def build_ui(stopping: threading.Event) -> Path | None:
    """npm ci (when the lock changed) and npm run build (when the sources changed)."""
    if not (FRONTEND / "package.json").is_file():
        return None
    out = FRONTEND / "out"
    if os.environ.get("DOCFLOW_SKIP_UI_BUILD"):
        return out if out.is_dir() else None
    if shutil.which("npm") is None:
        say("ui", "node/npm not found: the API runs without the UI (install Node.js 20+)")
        return out if out.is_dir() else None
    marker = FRONTEND / "node_modules" / ".package-lock.json"
    lock = FRONTEND / "package-lock.json"
    steps: list[list[str]] = []
    if not marker.exists() or (lock.exists() and lock.stat().st_mtime > marker.stat().st_mtime):
        steps.append(
            ["npm", "ci", "--no-audit", "--no-fund"]
            if lock.exists()
            else ["npm", "install", "--no-audit", "--no-fund"]
        )
    built = out / "index.html"
    if steps or not built.exists() or _newest_source(FRONTEND) > built.stat().st_mtime:
        steps.append(["npm", "run", "build"])
    for argv in steps:
        if stopping.is_set():
            return None
        say("ui", "$ " + " ".join(argv))
        proc = subprocess.Popen(
            argv,
            cwd=FRONTEND,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            env={**os.environ, "NEXT_TELEMETRY_DISABLED": "1"},
        )
        _pump("ui", proc)
        if proc.wait() != 0:
            say("ui", f"{argv[1]} failed (exit {proc.returncode}); continuing without a fresh UI")
            break
    return out if out.is_dir() else None


def _secret(path: Path) -> str:
    """A generated password kept under var/, so it stays the same from one run to the next."""
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(12)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


def run_stack(host: str, port: int, concurrency: int) -> int:
    var = var_dir()
    var.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("DOCFLOW_VAR_DIR", str(var))
    env.setdefault("PYTHONUNBUFFERED", "1")
    servers: list[EmbeddedPostgres | EmbeddedRedis] = []
    children: dict[str, subprocess.Popen[str]] = {}
    stopping = threading.Event()

    def stop(*_: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        ui = build_ui(stopping)
        if ui is not None and "DOCFLOW_UI_DIR" not in env:
            env["DOCFLOW_UI_DIR"] = str(ui.resolve())
        if not env.get("DATABASE_URL"):
            pg = EmbeddedPostgres(var / "postgres")
            servers.append(pg)
            env["DATABASE_URL"] = pg.start()
            say("stack", f"embedded PostgreSQL, data in {var / 'postgres'}")
        if not env.get("REDIS_URL"):
            rd = EmbeddedRedis(var / "redis", port=int(env.get("DOCFLOW_REDIS_PORT", "6390")))
            servers.append(rd)
            env["REDIS_URL"] = rd.start()
            say("stack", f"embedded Redis on {env['REDIS_URL']}, data in {var / 'redis'}")
        if stopping.is_set():
            return 130
        python = sys.executable
        migrate = subprocess.run(
            [python, "-m", "docflow.cli", "migrate"], env=env, capture_output=True, text=True
        )
        for line in (migrate.stdout + migrate.stderr).splitlines():
            if "RuntimeDirWarning" not in line and "user_runtime_dir" not in line:
                say("migrate", line)
        if migrate.returncode != 0:
            say("stack", "migrations failed; nothing else was started")
            return 1
        sign_in = _first_admin(python, env)
        flower_port = env.get("FLOWER_PORT", "5555")
        env.setdefault("DOCFLOW_FLOWER_USER", "admin")
        if not env.get("DOCFLOW_FLOWER_PASSWORD"):
            env["DOCFLOW_FLOWER_PASSWORD"] = _secret(var / "flower-password")
        # The stack's one worker may give each pool child a CPU of its own (config.py).
        env.setdefault("DOCFLOW_WORKER_PIN_CPUS", "true")
        commands = {
            "api": [python, "-m", "docflow.cli", "api", "--host", host, "--port", str(port)],
            "worker": [python, "-m", "docflow.cli", "worker", "-c", str(concurrency)],
            "beat": [python, "-m", "docflow.cli", "beat"],
            "flower": [
                python,
                "-m",
                "docflow.cli",
                "flower",
                "--port",
                flower_port,
                "--address",
                host,
            ],
        }
        for name, argv in commands.items():
            if name == "flower" and env.get("DOCFLOW_NO_FLOWER"):
                continue
            children[name] = subprocess.Popen(
                argv,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
            threading.Thread(target=_pump, args=(name, children[name]), daemon=True).start()
        if _wait_ready(f"http://{host}:{port}/api/v1/health/ready", stopping, children):
            banner = [
                f"Docflow is ready: http://{host}:{port}/",
                f"  API docs   http://{host}:{port}/api/v1/docs",
                f"  sign in    {sign_in}",
                f"  Flower     http://{host}:{flower_port}/  (user "
                f"{env['DOCFLOW_FLOWER_USER']}, password in {var / 'flower-password'} "
                "unless DOCFLOW_FLOWER_PASSWORD is set)",
                f"  metrics    http://{host}:{port}/metrics",
                "  stop       Ctrl-C (data stays in " + str(var) + ")",
            ]
            for line in banner:
                say("stack", line)
        while not stopping.is_set():
            for name, child in children.items():
                if child.poll() is not None:
                    say("stack", f"{name} exited with {child.returncode}; stopping everything")
                    stopping.set()
            stopping.wait(0.5)
        return 0
    finally:
        say("stack", "stopping…")
        _stop_children(children)
        for server in reversed(servers):
            try:
                server.stop()
            except Exception as exc:  # keep stopping the others
                say("stack", f"could not stop {type(server).__name__}: {exc}")
        say("stack", "stopped")


def _stop_children(children: dict[str, subprocess.Popen[str]]) -> None:
    # SIGTERM to each main process only: a Celery worker then finishes the task in hand (warm
    # shutdown); signalling its pool children too would abandon that task.
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 60
    for child in children.values():
        try:
            child.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    # Celery's pool children live in the same process group; make sure none outlived the parent.
    for child in children.values():
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _first_admin(python: str, env: dict[str, str]) -> str:
    email, password = env.get("DOCFLOW_ADMIN_EMAIL"), env.get("DOCFLOW_ADMIN_PASSWORD")
    if email and password:
        result = subprocess.run(
            [
                python,
                "-m",
                "docflow.cli",
                "users",
                "create",
                "--email",
                email,
                "--password",
                password,
                "--role",
                "admin",
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        message = (result.stdout or result.stderr).strip()
        if result.returncode == 0:
            say("stack", message)
        elif "exist" in message.lower() or "already" in message.lower():
            say("stack", f"admin {email} already exists; keeping it")
        else:
            say("stack", f"could not create admin {email}: {message}")
        return f"{email} with DOCFLOW_ADMIN_PASSWORD"
    return (
        "no account yet? run: .venv/bin/docflow users create --email you@example.com "
        "--role admin   (or set DOCFLOW_ADMIN_EMAIL and DOCFLOW_ADMIN_PASSWORD)"
    )


def _wait_ready(
    url: str, stopping: threading.Event, children: dict[str, subprocess.Popen[str]]
) -> bool:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not stopping.is_set():
        if any(c.poll() is not None for c in children.values()):
            return False
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        stopping.wait(0.5)
    return False
