"""Kernel tables: organisations, people, credentials, the audit chain, idempotency records."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, Index, LargeBinary, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from tanhui.db import BigIntPK, UTCDateTime, new_id, utcnow


class OrgKind(StrEnum):
    cooperative = "cooperative"
    enterprise = "enterprise"
    verifier = "verifier"
    authority = "authority"
    court = "court"
    compensation_fund = "compensation_fund"
    merchant = "merchant"
    data_partner = "data_partner"
    platform = "platform"


class Role(StrEnum):
    """Within an organisation: owners manage people and keys, members act, viewers read."""

    owner = "owner"
    member = "member"
    viewer = "viewer"


ROLE_RANK = {Role.viewer: 1, Role.member: 2, Role.owner: 3}


class Organisation(SQLModel, table=True):
    __tablename__ = "organisation"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(sa_type=String(200), unique=True)
    kind: OrgKind = Field(sa_type=String(32), index=True)
    public_key: str | None = Field(
        default=None, sa_type=String(64), description="base64 raw Ed25519 key it signs with"
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class User(SQLModel, table=True):
    """A person acting for an organisation (or a platform admin, who may have none)."""

    __tablename__ = "user_account"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    email: str = Field(sa_type=String(320), unique=True)
    display_name: str = Field(default="", sa_type=String(200))
    password_hash: str = Field(sa_type=String(200))
    organisation_id: uuid.UUID | None = Field(
        default=None, foreign_key="organisation.id", index=True
    )
    role: Role | None = Field(default=None, sa_type=String(16))
    is_platform_admin: bool = False
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Resident(SQLModel, table=True):
    """An individual taking part in carbon inclusion; phone and card are sealed (PII)."""

    __tablename__ = "resident"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    phone_sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    phone_index: str = Field(sa_type=String(64), unique=True)
    citizen_card_sealed: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    citizen_card_index: str | None = Field(default=None, sa_type=String(64), unique=True)
    display_name: str = Field(default="", sa_type=String(100))
    elder_mode: bool = False
    locale: str = Field(default="zh-CN", sa_type=String(8))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class WebSession(SQLModel, table=True):
    """A browser login. The cookie carries a signed random key; only its hash is stored."""

    __tablename__ = "web_session"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    key_hash: str = Field(sa_type=String(64), unique=True)
    user_id: uuid.UUID | None = Field(default=None, foreign_key="user_account.id", index=True)
    resident_id: uuid.UUID | None = Field(default=None, foreign_key="resident.id", index=True)
    csrf_token: str = Field(sa_type=String(64))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ApiToken(SQLModel, table=True):
    """A machine client's bearer token: shown once, stored hashed, revocable."""

    __tablename__ = "api_token"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(sa_type=String(100))
    token_hash: str = Field(sa_type=String(64), unique=True)
    prefix: str = Field(sa_type=String(16))
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True)
    organisation_id: uuid.UUID | None = Field(
        default=None, foreign_key="organisation.id", index=True
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LoginAttempt(SQLModel, table=True):
    """Failed and successful sign-ins, counted per account and per IP for rate limiting."""

    __tablename__ = "login_attempt"
    __table_args__ = (
        Index("ix_login_attempt_account_at", "account", "attempted_at"),
        Index("ix_login_attempt_ip_at", "ip", "attempted_at"),
    )

    id: int | None = Field(default=None, sa_type=BigIntPK, primary_key=True)
    account: str = Field(sa_type=String(320))
    ip: str = Field(sa_type=String(64))
    succeeded: bool
    attempted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Throttle(SQLModel, table=True):
    """A rate-limit counter: how often ``key`` did ``scope`` in the window that began at
    ``window_started_at``. One row per (scope, key), locked by the check that reads it, so that
    concurrent attempts are counted one after the other (see :mod:`tanhui.throttle`). ``key`` is
    a keyed hash of the identifier (phone, email, address), never the identifier itself."""

    __tablename__ = "auth_throttle"

    scope: str = Field(sa_type=String(40), primary_key=True)
    key: str = Field(sa_type=String(64), primary_key=True)
    window_started_at: datetime = Field(sa_type=UTCDateTime)
    count: int = 0


class OneTimeCode(SQLModel, table=True):
    """A resident's sign-in code: stored as a keyed hash, short-lived, few tries."""

    __tablename__ = "one_time_code"
    __table_args__ = (Index("ix_one_time_code_phone_created", "phone_index", "created_at"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    phone_index: str = Field(sa_type=String(64))
    code_hash: str = Field(sa_type=String(64))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    attempts: int = 0
    consumed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AuditRecord(SQLModel, table=True):
    """One link of the append-only audit chain; ``hash`` covers ``prev_hash`` and the content."""

    __tablename__ = "audit_record"
    __table_args__ = (Index("ix_audit_record_subject", "subject_type", "subject_id"),)

    seq: int = Field(
        sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    actor: str = Field(sa_type=String(100))
    action: str = Field(sa_type=String(100), index=True)
    subject_type: str = Field(sa_type=String(50))
    subject_id: str = Field(sa_type=String(100))
    payload: str = Field(sa_type=Text, description="canonical JSON")
    prev_hash: str = Field(sa_type=String(64))
    hash: str = Field(sa_type=String(64), unique=True)


class AuditHead(SQLModel, table=True):
    """The chain's tip. Locking this single row orders concurrent appends."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True, sa_column_kwargs={"autoincrement": False})
    seq: int = Field(default=0, sa_type=BigInteger)
    hash: str = Field(default="0" * 64, sa_type=String(64))


class AuditCheckpoint(SQLModel, table=True):
    """The platform's Ed25519 signature over the chain hash at ``seq``."""

    __tablename__ = "audit_checkpoint"

    seq: int = Field(
        sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    hash: str = Field(sa_type=String(64))
    key_id: str = Field(sa_type=String(40))
    signature: str = Field(sa_type=String(100))
    signed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SigningKeyRecord(SQLModel, table=True):
    """Public keys that ever signed something here, so old signatures stay verifiable."""

    __tablename__ = "signing_key"

    key_id: str = Field(sa_type=String(40), primary_key=True)
    owner: str = Field(sa_type=String(100), description="'platform' or 'organisation:<id>'")
    public_key: str = Field(sa_type=String(64), description="base64 raw 32 bytes")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class IdempotencyRecord(SQLModel, table=True):
    """The first answer to a request made with an ``Idempotency-Key``, replayed on retries."""

    __tablename__ = "idempotency_record"
    __table_args__ = (UniqueConstraint("scope", "key", name="uq_idempotency_record_scope_key"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    scope: str = Field(sa_type=String(120), description="who may reuse the key, and where")
    key: str = Field(sa_type=String(200))
    request_hash: str = Field(sa_type=String(64))
    status_code: int | None = None
    response_body: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
