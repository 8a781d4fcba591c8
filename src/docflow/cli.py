"""`docflow …`: run the processes, migrate, manage users, back up, and talk to a running API."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer

from docflow.config import get_settings

app = typer.Typer(
    help="Docflow: documents from upload to export, every stage streamed live.",
    no_args_is_help=True,
    add_completion=False,
)
users_app = typer.Typer(help="Manage accounts.", no_args_is_help=True)
app.add_typer(users_app, name="users")


@app.command()
def api(
    host: Annotated[str, typer.Option(envvar="HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PORT")] = 8080,
    workers: int = 1,
) -> None:
    """Run the HTTP API (uvicorn)."""
    from docflow.server import serve

    serve(host, port, workers)


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option("--concurrency", "-c")] = 2,
    queues: Annotated[
        str, typer.Option("--queues", "-Q")
    ] = "documents,documents-heavy,maintenance",
    name: Annotated[str | None, typer.Option("--name", "-n")] = None,
    pool: str = "prefork",
) -> None:
    """Run a Celery worker for the document stages.

    With DOCFLOW_WORKER_METRICS_PORT set, Prometheus metrics of all its processes are served on
    that port (bind address DOCFLOW_WORKER_METRICS_HOST, default 127.0.0.1).
    """
    metrics_port = int(os.environ.get("DOCFLOW_WORKER_METRICS_PORT") or 0)
    metrics_dir = None
    if metrics_port and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Must be set before prometheus_client is first imported, so prefork children share it.
        metrics_dir = tempfile.mkdtemp(prefix="docflow-worker-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    from docflow.worker.app import celery_app

    if metrics_port:
        from docflow.metrics import serve_worker_metrics

        serve_worker_metrics(metrics_port)
    argv = [
        "worker",
        "-Q",
        queues,
        "-c",
        str(concurrency),
        "--pool",
        pool,
        "-l",
        get_settings().log_level,
        "-E",
    ]
    if name:
        argv += ["-n", name]
    try:
        celery_app.worker_main(argv)
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


@app.command()
def flower(
    port: Annotated[int, typer.Option(envvar="FLOWER_PORT")] = 5555,
    address: Annotated[str, typer.Option(envvar="FLOWER_ADDRESS")] = "127.0.0.1",
    user: Annotated[str, typer.Option(envvar="DOCFLOW_FLOWER_USER")] = "admin",
    password: Annotated[str, typer.Option(envvar="DOCFLOW_FLOWER_PASSWORD")] = "",
) -> None:
    """Run Flower, the task dashboard, behind HTTP basic auth (a password is required)."""
    if not password:
        typer.echo("error: set DOCFLOW_FLOWER_PASSWORD; Flower never runs without one", err=True)
        raise typer.Exit(2)
    from docflow.worker.app import celery_app

    celery_app.start(
        [
            "flower",
            f"--port={port}",
            f"--address={address}",
            f"--basic-auth={user}:{password}",
            "--purge_offline_workers=60",
        ]
    )


@app.command()
def beat() -> None:
    """Run Celery beat (the reaper's clock). Run exactly one."""
    from docflow.worker.app import celery_app

    schedule = os.path.join(os.environ.get("DOCFLOW_VAR_DIR", "var"), "celerybeat-schedule")
    os.makedirs(os.path.dirname(schedule) or ".", exist_ok=True)
    celery_app.start(["beat", "-l", get_settings().log_level, "-s", schedule])


@app.command()
def migrate() -> None:
    """Create the database if needed and apply all migrations."""
    from docflow.migrate import upgrade

    upgrade()
    typer.echo("database is up to date")


@app.command()
def reap() -> None:
    """Run the reaper once, now."""
    from docflow.worker.reaper import reap as run_reaper

    report = run_reaper()
    typer.echo(
        f"resumed {len(report.resumed)}, failed {len(report.failed)}, "
        f"requeued {len(report.requeued)}"
    )


@app.command()
def run(
    port: Annotated[int, typer.Option(envvar="PORT")] = 8080,
    host: Annotated[str, typer.Option(envvar="HOST")] = "127.0.0.1",
    concurrency: Annotated[int, typer.Option(envvar="DOCFLOW_WORKER_CONCURRENCY")] = 2,
) -> None:
    """Run the whole stack on this machine: embedded PostgreSQL/Redis when none is configured."""
    from docflow.localstack import run_stack

    sys.exit(run_stack(host=host, port=port, concurrency=concurrency))


@app.command()
def backup(
    out: Annotated[Path, typer.Option("--out", "-o", help="directory for the archive")] = Path(
        "var/backups"
    ),
    keep: Annotated[int, typer.Option(help="keep this many newest archives (0 = all)")] = 0,
) -> None:
    """Write a timestamped archive: pg_dump -Fc, the file store, a manifest with checksums."""
    from docflow.backup import backup as run_backup

    report = run_backup(out)
    counts = ", ".join(f"{v} {k}" for k, v in report.counts.items())
    typer.echo(
        f"wrote {report.path} ({report.path.stat().st_size} bytes: {counts}, "
        f"{report.files} stored files)"
    )
    if keep:
        archives = sorted(out.glob("docflow-backup-*.tar"))
        for old in archives[:-keep]:
            old.unlink()
            typer.echo(f"removed old {old}")


@app.command()
def restore(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    force: Annotated[bool, typer.Option(help="drop the target database's tables first")] = False,
) -> None:
    """Restore an archive into an empty database, then verify counts and every checksum."""
    from docflow.backup import BackupError
    from docflow.backup import restore as run_restore

    try:
        report = run_restore(file, force=force)
    except BackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    counts = ", ".join(f"{v} {k}" for k, v in report.counts.items())
    typer.echo(f"restored {file}: {counts}; {report.verified_documents} originals checked")
    if report.problems:
        for problem in report.problems:
            typer.echo(f"problem: {problem}", err=True)
        raise typer.Exit(1)
    typer.echo("verified: counts and checksums match the manifest")


def _client_call(coro: Coroutine[Any, Any, int]) -> None:
    from docflow.client.api import ClientError

    try:
        code = asyncio.run(coro)
    except ClientError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    raise typer.Exit(code)


UrlOpt = Annotated[str | None, typer.Option("--url", help="API base URL [env DOCFLOW_URL]")]
EmailOpt = Annotated[str | None, typer.Option("--email", help="[env DOCFLOW_EMAIL]")]
PasswordOpt = Annotated[str | None, typer.Option("--password", help="[env DOCFLOW_PASSWORD]")]
TokenOpt = Annotated[str | None, typer.Option("--token", help="[env DOCFLOW_API_TOKEN]")]


@app.command()
def upload(
    files: Annotated[list[Path], typer.Argument(help="files to upload")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="show live progress")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to follow before giving up")] = 600,
    url: UrlOpt = None,
    email: EmailOpt = None,
    password: PasswordOpt = None,
    token: TokenOpt = None,
) -> None:
    """Upload files; with --follow, show each one's stages live. Exit 1 if any failed."""
    from rich.console import Console

    from docflow.client.api import Credentials
    from docflow.client.commands import upload as run_upload

    creds = Credentials.resolve(url, email, password, token)
    _client_call(run_upload(files, creds, follow=follow, wait_seconds=timeout, console=Console()))


@app.command()
def status(
    document_id: Annotated[str, typer.Argument()],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    url: UrlOpt = None,
    email: EmailOpt = None,
    password: PasswordOpt = None,
    token: TokenOpt = None,
) -> None:
    """Show one document's status, stage, message and timings. Exit 1 if it failed."""
    from docflow.client.api import Credentials
    from docflow.client.commands import status as run_status

    creds = Credentials.resolve(url, email, password, token)
    _client_call(run_status(document_id, creds, as_json=as_json, out=sys.stdout))


@app.command()
def export(
    fmt: Annotated[str, typer.Option("--format", help="csv or json")] = "csv",
    output: Annotated[str, typer.Option("--output", "-o", help="file, or - for stdout")] = "-",
    category: str = "",
    q: str = "",
    created_from: str = "",
    created_to: str = "",
    url: UrlOpt = None,
    email: EmailOpt = None,
    password: PasswordOpt = None,
    token: TokenOpt = None,
) -> None:
    """Export finalised documents (streamed) as CSV or JSON."""
    from docflow.client.api import Credentials
    from docflow.client.commands import export as run_export

    creds = Credentials.resolve(url, email, password, token)
    filters = {"category": category, "q": q, "created_from": created_from, "created_to": created_to}
    _client_call(run_export(creds, fmt, output, filters))


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option(prompt=True)],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    role: Annotated[str, typer.Option(help="uploader, reviewer or admin")] = "uploader",
) -> None:
    """Create an account."""
    from docflow.users.commands import create

    try:
        user = asyncio.run(create(email, password, role))
    except Exception as exc:
        message = getattr(exc, "message", str(exc))
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"created {user.role} {user.email} ({user.id})")


@users_app.command("list")
def users_list() -> None:
    """List accounts."""
    from docflow.users.commands import list_users

    for user in asyncio.run(list_users()):
        typer.echo(
            f"{user.id}  {user.role:9}  {'active ' if user.is_active else 'disabled'}  {user.email}"
        )


if __name__ == "__main__":
    app()
