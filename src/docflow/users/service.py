"""Rules for accounts."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from docflow.auth.passwords import hash_password
from docflow.errors import AppError, Conflict
from docflow.models import Role, User
from docflow.users.repository import UserRepository


async def create_user(session: AsyncSession, email: str, password: str, role: str) -> User:
    email = email.strip().lower()
    if "@" not in email:
        raise AppError("That is not an email address.", details={"field": "email"})
    if len(password) < 8:
        raise AppError("The password must be at least 8 characters.", details={"field": "password"})
    if role not in {r.value for r in Role}:
        raise AppError(f"Unknown role {role!r}.", details={"roles": [r.value for r in Role]})
    repo = UserRepository(session)
    if await repo.by_email(email):
        raise Conflict("A user with that email already exists.")
    return await repo.add(User(email=email, password_hash=hash_password(password), role=role))
