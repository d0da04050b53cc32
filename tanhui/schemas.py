"""What crosses the wire for the kernel's own routes (identity, tokens, admin)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from tanhui.models import OrgKind, Role


class OrganisationPublic(BaseModel):
    id: uuid.UUID
    name: str
    kind: OrgKind


class MePublic(BaseModel):
    kind: str = Field(description="'user' or 'resident'")
    id: uuid.UUID
    email: str | None
    display_name: str
    organisation: OrganisationPublic | None
    role: Role | None
    is_platform_admin: bool
    csrf_token: str | None = Field(
        description="send as X-CSRF-Token with cookie-authenticated writes"
    )


class PasswordLogin(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class PhoneCodeRequest(BaseModel):
    phone: str = Field(max_length=32)


class PhoneCodeLogin(BaseModel):
    phone: str = Field(max_length=32)
    code: str = Field(max_length=12)


class SessionStarted(BaseModel):
    id: uuid.UUID
    kind: str
    csrf_token: str


class TokenCreate(BaseModel):
    name: str = Field(default="api", max_length=100)


class TokenCreated(BaseModel):
    id: uuid.UUID
    name: str
    token: str = Field(description="shown once; store it now")
    prefix: str
    created_at: datetime


class TokenPublic(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class OrganisationCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    kind: OrgKind


class UserCreate(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(min_length=10, max_length=1024)
    organisation_id: uuid.UUID | None = None
    role: Role | None = None
    is_platform_admin: bool = False
    display_name: str = Field(default="", max_length=200)


class UserPublic(BaseModel):
    id: uuid.UUID
    email: str
    display_name: str
    organisation_id: uuid.UUID | None
    role: Role | None
    is_platform_admin: bool


class Problem(BaseModel):
    """RFC 9457 problem details, as every error answers."""

    type: str
    title: str
    status: int
    detail: str
    messages: dict[str, str] | None = None
    errors: list[dict[str, str]] | None = None
