"""`docflow …`: run the processes, migrate, manage users."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Annotated

import typer

from docflow.config import get_settings

app = typer.Typer(help="Docflow: documents from upload to export, every stage streamed live.",
                  no_args_is_help=True, add_completion=False)
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
    queues: Annotated[str, typer.Option("--queues", "-Q")] = "documents,maintenance",
    name: Annotated[str | None, typer.Option("--name", "-n")] = None,
    pool: str = "prefork",
) -> None:
    """Run a Celery worker for the document stages."""
    from docflow.worker.app import celery_app

    argv = ["worker", "-Q", queues, "-c", str(concurrency), "--pool", pool, "-l",
            get_settings().log_level, "-E"]
    if name:
        argv += ["-n", name]
    celery_app.worker_main(argv)


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
    typer.echo(f"resumed {len(report.resumed)}, failed {len(report.failed)}, "
               f"requeued {len(report.requeued)}")


@app.command()
def run(
    port: Annotated[int, typer.Option(envvar="PORT")] = 8080,
    host: Annotated[str, typer.Option(envvar="HOST")] = "127.0.0.1",
    concurrency: Annotated[int, typer.Option(envvar="DOCFLOW_WORKER_CONCURRENCY")] = 2,
) -> None:
    """Run the whole stack on this machine: embedded PostgreSQL/Redis when none is configured."""
    from docflow.localstack import run_stack

    sys.exit(run_stack(host=host, port=port, concurrency=concurrency))


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option(prompt=True)],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True,
                                          confirmation_prompt=True)],
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
        typer.echo(f"{user.id}  {user.role:9}  {'active ' if user.is_active else 'disabled'}  "
                   f"{user.email}")


if __name__ == "__main__":
    app()
