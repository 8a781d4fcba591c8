"""Docflow's own test hosts on one machine: a network namespace per host, joined by a bridge.

Hosts: `data` (PostgreSQL + Redis), `api` (the API and beat), `w1` and `w2` (Celery workers).
Each reaches the others only through its own address on 10.231.7.0/24; the root namespace (the
test process) owns the bridge's address, .1, and so reaches every host the way a client would.
Nothing is shared on disk: originals live in PostgreSQL (the default storage backend).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "dfscale"
BRIDGE = f"{PREFIX}-br"
SUBNET = "10.231.7"
HOSTS = {"data": 10, "api": 20, "w1": 31, "w2": 32}
PG_BIN_ROOT = Path("/usr/lib/postgresql")


def netns(host: str) -> str:
    return f"{PREFIX}-{host}"


def veth_root(host: str) -> str:
    return f"dfs-{host}-r"  # interface names are limited to 15 characters


def veth_host(host: str) -> str:
    return f"dfs-{host}-h"


def address(host: str) -> str:
    return f"{SUBNET}.{HOSTS[host]}"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


def pg_bin() -> Path | None:
    """Debian's PostgreSQL server binaries, newest version first."""
    if not PG_BIN_ROOT.is_dir():
        return None
    versions = sorted(
        (p for p in PG_BIN_ROOT.iterdir() if (p / "bin" / "postgres").is_file()),
        key=lambda p: int(p.name) if p.name.isdigit() else 0,
        reverse=True,
    )
    return versions[0] / "bin" if versions else None


def unavailable_reason() -> str | None:
    """Why namespaces cannot be made here, or None when they can."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    if shutil.which("ip") is None:
        return "no iproute2 (`ip`) on this machine"
    if pg_bin() is None:
        return f"no Debian PostgreSQL server binaries under {PG_BIN_ROOT}"
    if shutil.which("runuser") is None:
        return "no runuser to start PostgreSQL as its own user"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no `postgres` OS user to run PostgreSQL"
    probe = f"{PREFIX}-probe"
    _ip("netns", "del", probe, check=False)
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` fails here: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def teardown_network() -> None:
    """Remove namespaces, bridge and veths with our names, killing what still runs inside."""
    listed = _ip("netns", "list", check=False).stdout.split("\n")
    ours = [line.split()[0] for line in listed if line.startswith(f"{PREFIX}-")]
    for name in ours:
        # Only processes inside our own namespaces: leftovers of this test's earlier runs.
        pids = _ip("netns", "pids", name, check=False).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        _ip("netns", "del", name, check=False)
    for host in HOSTS:
        _ip("link", "del", veth_root(host), check=False)
    _ip("link", "del", BRIDGE, check=False)


def build_network() -> None:
    _ip("link", "add", BRIDGE, "type", "bridge")
    _ip("addr", "add", f"{SUBNET}.1/24", "dev", BRIDGE)
    _ip("link", "set", BRIDGE, "up")
    for host in HOSTS:
        ns = netns(host)
        _ip("netns", "add", ns)
        _ip(
            "link",
            "add",
            veth_root(host),
            "type",
            "veth",
            "peer",
            "name",
            veth_host(host),
            "netns",
            ns,
        )
        _ip("link", "set", veth_root(host), "master", BRIDGE)
        _ip("link", "set", veth_root(host), "up")
        _ip("-n", ns, "addr", "add", f"{address(host)}/24", "dev", veth_host(host))
        _ip("-n", ns, "link", "set", veth_host(host), "up")
        _ip("-n", ns, "link", "set", "lo", "up")


def cut_off(host: str) -> None:
    """Pull the host's cable: its link goes down, its processes keep running, unreachable."""
    _ip("-n", netns(host), "link", "set", veth_host(host), "down")


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    stop_signal: int = signal.SIGTERM

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def signal(self, sig: int | None = None) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig or self.stop_signal)

    def kill(self) -> None:
        # Children may outlive the leader (a prefork pool whose parent is gone): sweep the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)


def stop(procs: list[Proc], grace: float = 5) -> None:
    """Ask every process group to stop at once, give them `grace` seconds together, then kill."""
    for proc in procs:
        proc.signal()
    deadline = time.monotonic() + grace
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.process.wait(max(deadline - time.monotonic(), 0.1))
    for proc in procs:
        proc.kill()


def wait_tcp(host: str, port: int, procs: list[Proc], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.process.poll() is not None:
                raise RuntimeError(f"{proc.name} exited early:\n{proc.tail()}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout:.0f}s")


@dataclass
class Cluster:
    tmp: Path
    env: dict[str, str]
    procs: list[Proc] = field(default_factory=list)

    @property
    def database_url(self) -> str:
        return f"postgresql://postgres@{address('data')}:5432/docflow"

    @property
    def redis_url(self) -> str:
        return f"redis://{address('data')}:6379/0"

    @property
    def base_url(self) -> str:
        return f"http://{address('api')}:8000"

    def spawn(
        self,
        host: str,
        name: str,
        argv: list[str],
        *,
        user: str | None = None,
        env: dict[str, str] | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> Proc:
        """Run `argv` on `host` (inside its namespace), in its own process group."""
        log = self.tmp / f"{name}.log"
        prefix = ["ip", "netns", "exec", netns(host)]
        if user:
            prefix += ["runuser", "-u", user, "--"]
        process = subprocess.Popen(
            [*prefix, *argv],
            env={**self.env, **(env or {})},
            cwd=ROOT,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc = Proc(name, process, log, stop_signal)
        self.procs.append(proc)
        return proc

    def docflow(self, host: str, name: str, *args: str, env: dict[str, str] | None = None) -> Proc:
        return self.spawn(host, name, [sys.executable, "-m", "docflow.cli", *args], env=env)

    def start_data(self) -> None:
        bindir = pg_bin()
        assert bindir is not None
        pgdata, sockets = self.tmp / "pgdata", self.tmp / "pgsock"
        for path in (pgdata, sockets):
            path.mkdir(mode=0o700)
            shutil.chown(path, "postgres")
        made = subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(bindir / "initdb"),
                "-D",
                str(pgdata),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if made.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{made.stdout}{made.stderr}")
        (pgdata / "pg_hba.conf").write_text(
            f"local all all trust\nhost all all {SUBNET}.0/24 trust\n"
        )
        # Stopped with SIGINT: PostgreSQL's fast shutdown (SIGTERM would wait for clients).
        self.spawn(
            "data",
            "postgres",
            [
                str(bindir / "postgres"),
                "-D",
                str(pgdata),
                "-c",
                f"listen_addresses={address('data')}",
                "-c",
                f"unix_socket_directories={sockets}",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=200",
                # A host that vanishes mid-transaction must not keep its row locks for the kernel's
                # two-hour keepalive: the production setting that lets the survivors carry on.
                "-c",
                "idle_in_transaction_session_timeout=5s",
                "-c",
                "tcp_keepalives_idle=5",
                "-c",
                "tcp_keepalives_interval=2",
                "-c",
                "tcp_keepalives_count=3",
            ],
            user="postgres",
            stop_signal=signal.SIGINT,
        )
        from docflow.embedded import redis_server_binary

        self.spawn(
            "data",
            "redis",
            [
                redis_server_binary(),
                "--bind",
                address("data"),
                "--port",
                "6379",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.tmp),
                "--daemonize",
                "no",
            ],
        )
        data_procs = [p for p in self.procs if p.name in {"postgres", "redis"}]
        wait_tcp(address("data"), 5432, data_procs, timeout=60)
        wait_tcp(address("data"), 6379, data_procs, timeout=30)

    def wait_api(self, timeout: float = 90) -> None:
        import httpx

        deadline, last = time.monotonic() + timeout, ""
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.process.poll() is not None:
                    raise RuntimeError(f"{proc.name} exited early:\n{proc.tail()}")
            try:
                response = httpx.get(f"{self.base_url}/api/v1/health", timeout=3, trust_env=False)
                if response.status_code == 200:
                    return
                last = response.text
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.5)
        raise RuntimeError(f"API not up after {timeout:.0f}s: {last}")

    def wait_workers(self, names: list[str], timeout: float = 90) -> None:
        """Each worker announces itself in Redis once its pool is ready (worker/app.py)."""
        client = redis.Redis.from_url(self.redis_url, socket_timeout=3)
        prefix = self.env.get("DOCFLOW_REDIS_NAMESPACE", "docflow") + ":workers:"
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                for proc in self.procs:
                    if proc.process.poll() is not None:
                        raise RuntimeError(f"{proc.name} exited early:\n{proc.tail()}")
                present = {
                    k.decode().removeprefix(prefix).split("@")[0]
                    for k in client.scan_iter(f"{prefix}*")
                }
                if set(names) <= present:
                    return
                time.sleep(0.5)
        finally:
            client.close()
        raise RuntimeError(f"workers {names} not ready after {timeout:.0f}s")

    def stop_all(self) -> None:
        # Clients first, the data host last, so nothing logs a storm of reconnects.
        data = {"postgres", "redis"}
        stop([p for p in self.procs if p.name not in data])
        stop([p for p in self.procs if p.name in data])

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.tail()}" for p in self.procs)


def remove_stale_tmp() -> None:
    """Scratch directories of earlier runs that were killed before their teardown."""
    for stale in Path(tempfile.gettempdir()).glob(f"{PREFIX}-*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)


def make_tmp() -> Path:
    # Not pytest's tmp_path: PostgreSQL runs as its own user and must reach its data directory.
    tmp = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-{uuid.uuid4().hex[:6]}-"))
    tmp.chmod(0o755)
    return tmp


def base_env(tmp: Path, cluster_urls: tuple[str, str]) -> dict[str, str]:
    """Every process's environment: the data host's URLs and short leases, nothing inherited
    from the outer test run's own database or Redis."""
    database_url, redis_url = cluster_urls
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DOCFLOW_")
        and k not in {"DATABASE_URL", "REDIS_URL"}
        and "proxy" not in k.lower()
        and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    return {
        **inherited,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DOCFLOW_SECRET_KEY": f"scale-test-{uuid.uuid4().hex}",
        "DOCFLOW_STORAGE_BACKEND": "database",
        "DOCFLOW_LEASE_SECONDS": "4",
        "DOCFLOW_REAPER_INTERVAL_SECONDS": "1",
        "DOCFLOW_UPLOADED_GRACE_SECONDS": "2",
        "DOCFLOW_VAR_DIR": str(tmp / "var"),
        "DOCFLOW_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
