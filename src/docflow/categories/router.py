"""HTTP for the category taxonomy and the learned classifier behind it."""

from __future__ import annotations

from fastapi import APIRouter

from docflow.categories import service as categories
from docflow.categories.schemas import (
    CategoryCreate,
    CategoryRead,
    CategoryUpdate,
    ClassifierStatus,
    TrainingQueued,
)
from docflow.deps import CurrentUser, SessionDep

router = APIRouter(prefix="/categories", tags=["categories"])


@router.get("", response_model=list[CategoryRead])
async def list_categories(session: SessionDep, _user: CurrentUser) -> list[CategoryRead]:
    """The categories a document can be filed under, with how many documents each holds."""
    return await categories.list_categories(session)


@router.post("", status_code=201, response_model=CategoryRead)
async def create_category(
    body: CategoryCreate, session: SessionDep, user: CurrentUser
) -> CategoryRead:
    """Add a category (admins). The classifier learns it from the documents reviewers file there."""
    return await categories.create(session, user, body.name)


@router.patch("/{category_id}", response_model=CategoryRead)
async def rename_category(
    category_id: int, body: CategoryUpdate, session: SessionDep, user: CurrentUser
) -> CategoryRead:
    """Rename a category (admins); its documents move to the new name in the same change."""
    return await categories.rename(session, user, category_id, body.name)


@router.get("/classifier", response_model=ClassifierStatus)
async def classifier_status(session: SessionDep, _user: CurrentUser) -> ClassifierStatus:
    """The newest trained classifier: version, samples, classes, and whether it is in use."""
    return await categories.classifier_status(session)


@router.post("/classifier/train", status_code=202, response_model=TrainingQueued)
async def train_classifier(session: SessionDep, user: CurrentUser) -> TrainingQueued:
    """Retrain now from every approved document (admins); it runs in the background."""
    await categories.request_training(session, user)
    return TrainingQueued(queued=True)
