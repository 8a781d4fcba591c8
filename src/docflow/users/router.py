"""HTTP for account administration (admins only)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from docflow.deps import Admin, SessionDep
from docflow.models import User
from docflow.users import service as users
from docflow.users.schemas import UserAdminRead, UserCreate, UserUpdate

router = APIRouter(prefix="/users", tags=["users"])


@router.get("", response_model=list[UserAdminRead])
async def list_users(session: SessionDep, _: Admin) -> list[User]:
    """Every account, oldest first."""
    return await users.list_users(session)


@router.post("", status_code=201, response_model=UserAdminRead)
async def create_user(body: UserCreate, session: SessionDep, _: Admin) -> User:
    """Create an account with a role (uploader by default)."""
    return await users.create_user(session, body.email, body.password, body.role.value)


@router.get("/{user_id}", response_model=UserAdminRead)
async def get_user(user_id: uuid.UUID, session: SessionDep, _: Admin) -> User:
    """One account."""
    return await users.get_user(session, user_id)


@router.patch("/{user_id}", response_model=UserAdminRead)
async def update_user(
    user_id: uuid.UUID, body: UserUpdate, session: SessionDep, admin: Admin
) -> User:
    """Change an account's role, or disable / enable it (disabling ends its sessions and tokens)."""
    return await users.update_user(session, admin, user_id, body.role, body.is_active)
