"""SQL for categories and classifier models (API side, async)."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from docflow.models import Category, ClassifierModel, Document


class CategoryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def all_with_counts(self) -> list[tuple[Category, int]]:
        counts = (
            select(Document.category, func.count().label("n"))
            .group_by(Document.category)
            .subquery()
        )
        stmt = (
            select(Category, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.category == Category.name)
            .order_by(Category.id)
        )
        return [(row[0], int(row[1])) for row in (await self.session.execute(stmt)).all()]

    async def names(self) -> list[str]:
        stmt = select(Category.name).order_by(Category.id)
        return list((await self.session.execute(stmt)).scalars())

    async def get(self, category_id: int, *, for_update: bool = False) -> Category | None:
        stmt = select(Category).where(Category.id == category_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def by_name(self, name: str) -> Category | None:
        stmt = select(Category).where(Category.name == name)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def add(self, category: Category) -> Category:
        self.session.add(category)
        await self.session.flush()
        return category

    async def rename_documents(self, old: str, new: str) -> int:
        result = await self.session.execute(
            update(Document)
            .where(Document.category == old)
            .values(category=new, updated_at=func.now())
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def document_count(self, name: str) -> int:
        stmt = select(func.count()).select_from(Document).where(Document.category == name)
        return int((await self.session.execute(stmt)).scalar_one())

    async def latest_model(self) -> ClassifierModel | None:
        stmt = (
            select(ClassifierModel)
            .order_by(ClassifierModel.version.desc())
            .limit(1)
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()
