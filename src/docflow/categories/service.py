"""Rules for the taxonomy: who may change it, what a name looks like, renames that carry
documents along, and the check that an approval names a category that exists."""

from __future__ import annotations

import re
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from docflow import jobs
from docflow.categories.repository import CategoryRepository
from docflow.categories.schemas import CategoryRead, ClassifierStatus
from docflow.errors import AppError, Conflict, Forbidden, NotFound
from docflow.models import Category, Role, User
from docflow.pipeline.categorize import MIN_MODEL_CLASSES, MIN_MODEL_SAMPLES

TRAIN_TASK = "categories.train"
MAINTENANCE_QUEUE = "maintenance"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")


class UnknownCategory(AppError):
    status_code, code = 422, "validation_error"


def normalize_name(raw: str) -> str:
    """Names are API values and filters: lower case, words joined by underscores."""
    name = "_".join(raw.strip().lower().split())
    if not _NAME.match(name):
        raise UnknownCategory(
            "A category name may use letters, digits, '_' and '-' (at most 64 characters).",
            details={"field": "name", "value": raw[:64]},
        )
    return name


def _require_admin(user: User) -> None:
    if user.role != Role.ADMIN.value:
        raise Forbidden("Only admins can change the categories.")


def _read(category: Category, count: int) -> CategoryRead:
    return CategoryRead(
        id=category.id,
        name=category.name,
        rule_key=category.rule_key,
        document_count=count,
        created_at=category.created_at,
        updated_at=category.updated_at,
    )


async def list_categories(session: AsyncSession) -> list[CategoryRead]:
    return [_read(c, n) for c, n in await CategoryRepository(session).all_with_counts()]


async def create(session: AsyncSession, user: User, raw_name: str) -> CategoryRead:
    _require_admin(user)
    repo = CategoryRepository(session)
    name = normalize_name(raw_name)
    if await repo.by_name(name) is not None:
        raise Conflict(f"A category named '{name}' already exists.", details={"name": name})
    category = await repo.add(Category(name=name, rule_key=None))
    await session.refresh(category)
    return _read(category, 0)


async def rename(
    session: AsyncSession, user: User, category_id: int, raw_name: str
) -> CategoryRead:
    """Rename a category and every document filed under it, in one transaction."""
    _require_admin(user)
    repo = CategoryRepository(session)
    category = await repo.get(category_id, for_update=True)
    if category is None:
        raise NotFound("No such category.", details={"id": category_id})
    name = normalize_name(raw_name)
    if name == category.name:
        return _read(category, await repo.document_count(name))
    if await repo.by_name(name) is not None:
        raise Conflict(f"A category named '{name}' already exists.", details={"name": name})
    old = category.name
    category.name = name
    await session.flush()
    await repo.rename_documents(old, name)
    await session.refresh(category)
    # The model knows the old name; a retrain teaches it the new one.
    enqueue_training(session, force=True)
    return _read(category, await repo.document_count(name))


async def require(session: AsyncSession, name: str) -> None:
    """An approval may only file a document under a category that exists."""
    if await CategoryRepository(session).by_name(name) is None:
        names = await CategoryRepository(session).names()
        raise UnknownCategory(
            f"There is no category named '{name}'.",
            details={"field": "category", "value": name, "allowed": names},
        )


def enqueue_training(
    session: AsyncSession, document_id: uuid.UUID | None = None, *, force: bool = False
) -> None:
    """Ask the maintenance worker to retrain after commit; it decides whether it is due."""
    jobs.enqueue(session, TRAIN_TASK, document_id, queue=MAINTENANCE_QUEUE, kwargs={"force": force})


async def request_training(session: AsyncSession, user: User) -> None:
    _require_admin(user)
    enqueue_training(session, force=True)


async def classifier_status(session: AsyncSession) -> ClassifierStatus:
    model = await CategoryRepository(session).latest_model()
    base = ClassifierStatus(
        active=False, min_samples=MIN_MODEL_SAMPLES, min_classes=MIN_MODEL_CLASSES
    )
    if model is None:
        return base
    return base.model_copy(
        update={
            "active": model.sample_count >= MIN_MODEL_SAMPLES
            and len(model.classes) >= MIN_MODEL_CLASSES,
            "version": model.version,
            "sample_count": model.sample_count,
            "classes": list(model.classes),
            "created_at": model.created_at,
            "info": dict(model.info or {}),
        }
    )
