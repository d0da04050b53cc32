"""Identity use cases: organisations, users, residents, web sessions, API tokens, sign-in codes.

Plain functions taking a Session; they flush and never commit. Credentials are never stored in a
form that could be replayed: passwords with argon2, session keys, API tokens and one-time codes
as hashes.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, col, select

from tanhui import audit, pii, throttle
from tanhui.crypto import random_token, token_hash
from tanhui.db import utcnow
from tanhui.errors import Conflict, InvalidInput, NotFound, RateLimited, Unauthorized
from tanhui.i18n import N_, SUPPORTED_LOCALES
from tanhui.models import (
    ApiToken,
    LoginAttempt,
    OneTimeCode,
    Organisation,
    OrgKind,
    Resident,
    Role,
    User,
    WebSession,
)
from tanhui.settings import get_settings
from tanhui.sms import sender

API_TOKEN_PREFIX = "thk_"  # noqa: S105 - a public prefix, not a secret
MIN_PASSWORD_LENGTH = 10
OTP_DIGITS = 6
OTP_MAX_ATTEMPTS = 5
OTP_MIN_INTERVAL = timedelta(seconds=60)
OTP_MAX_PER_DAY = 10

_hasher = PasswordHasher()
# A real hash to compare against when the account does not exist, so timing does not tell.
_DUMMY_HASH = _hasher.hash("tanhui-timing-equaliser")


class InvalidCredentials(Unauthorized):
    code = "auth/invalid-credentials"
    title = N_("Wrong email or password")
    keeps_changes = True  # the failed attempt must count towards the rate limit


class LoginRateLimited(RateLimited):
    code = "auth/too-many-attempts"
    title = N_("Too many sign-in attempts")


class InvalidCode(Unauthorized):
    code = "auth/invalid-code"
    title = N_("The code is wrong or has expired")
    keeps_changes = True  # the wrong attempt must count


# --- organisations and users ---------------------------------------------------------------


def normalise_email(email: str) -> str:
    value = pii.fold(email).strip().lower()
    if "@" not in value or value.startswith("@") or value.endswith("@") or len(value) > 320:
        raise InvalidInput(
            N_("{email} is not a valid email address."),
            email=email,
            errors=[{"field": "email", "message": "invalid email"}],
        )
    return value


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            N_("The password must have at least {minimum} characters."),
            minimum=MIN_PASSWORD_LENGTH,
            errors=[{"field": "password", "message": "too short"}],
        )
    return _hasher.hash(password)


def create_organisation(
    session: Session, *, name: str, kind: OrgKind, actor: str = "system:cli"
) -> Organisation:
    name = name.strip()
    if not name:
        raise InvalidInput(
            N_("The organisation needs a name."),
            errors=[{"field": "name", "message": "required"}],
        )
    existing = session.exec(
        select(Organisation).where(col(Organisation.name) == name)
    ).one_or_none()
    if existing is not None:
        raise Conflict(N_("An organisation named {name} already exists."), name=name)
    organisation = Organisation(name=name, kind=kind)
    session.add(organisation)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="organisation.created",
        subject_type="organisation",
        subject_id=organisation.id,
        payload={"name": name, "kind": kind.value},
    )
    return organisation


def get_or_create_organisation(session: Session, *, name: str, kind: OrgKind) -> Organisation:
    existing = session.exec(
        select(Organisation).where(col(Organisation.name) == name.strip())
    ).one_or_none()
    if existing is not None:
        if existing.kind != kind:
            raise Conflict(
                N_("Organisation {name} exists with kind {kind}."), name=name, kind=existing.kind
            )
        return existing
    return create_organisation(session, name=name, kind=kind)


def create_user(
    session: Session,
    *,
    email: str,
    password: str,
    organisation: Organisation | None = None,
    role: Role | None = None,
    is_platform_admin: bool = False,
    display_name: str = "",
    actor: str = "system:cli",
) -> User:
    email = normalise_email(email)
    if organisation is None and not is_platform_admin:
        raise InvalidInput(N_("A user belongs to an organisation or is a platform admin."))
    if organisation is not None and role is None:
        raise InvalidInput(
            N_("A member of an organisation needs a role."),
            errors=[{"field": "role", "message": "required"}],
        )
    taken = session.exec(select(User.id).where(col(User.email) == email)).first()
    if taken is not None:
        raise Conflict(N_("A user with email {email} already exists."), email=email)
    user = User(
        email=email,
        password_hash=hash_password(password),
        organisation_id=organisation.id if organisation else None,
        role=role if organisation else None,
        is_platform_admin=is_platform_admin,
        display_name=display_name or email.split("@")[0],
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.created",
        subject_type="user",
        subject_id=user.id,
        payload={
            "email": email,
            "organisation_id": str(user.organisation_id) if user.organisation_id else None,
            "role": role.value if role and organisation else None,
            "platform_admin": is_platform_admin,
        },
    )
    return user


def list_organisations(session: Session, *, kind: OrgKind | None = None) -> list[Organisation]:
    """Organisations by name; only those of ``kind`` when one is given."""
    query = select(Organisation).order_by(col(Organisation.name))
    if kind is not None:
        query = query.where(col(Organisation.kind) == kind)
    return list(session.exec(query).all())


def list_users(session: Session, *, organisation_id: uuid.UUID | None = None) -> list[User]:
    query = select(User).order_by(col(User.email))
    if organisation_id is not None:
        query = query.where(col(User.organisation_id) == organisation_id)
    return list(session.exec(query).all())


def find_user_by_email(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(col(User.email) == normalise_email(email))).one_or_none()


def _login_limits() -> tuple[throttle.Limit, throttle.Limit]:
    settings = get_settings()
    window = timedelta(seconds=settings.login_window_s)
    return (
        throttle.Limit("login.account", settings.login_max_failures_per_account, window),
        throttle.Limit("login.address", settings.login_max_failures_per_ip, window),
    )


def authenticate(session: Session, *, email: str, password: str, ip: str) -> User:
    """Check a password sign-in, counting failures per account and per client address.

    Both counters are locked before the password is looked at and counted in the same
    transaction, so parallel attempts are judged one after the other: once either limit is
    reached :class:`LoginRateLimited` is raised without checking the password, and a
    locked-out attacker learns nothing more.
    """
    settings = get_settings()
    account = pii.fold(email).strip().lower()
    per_account, per_address = _login_limits()
    counters = throttle.hold(
        session, (per_account, account), (per_address, throttle.client_address(ip))
    )
    if throttle.exhausted(counters) is not None:
        raise LoginRateLimited(
            N_("Too many failed sign-ins; try again in {minutes} minutes."),
            minutes=settings.login_window_s // 60,
            retry_after=settings.login_window_s,
        )
    user = session.exec(select(User).where(col(User.email) == account)).one_or_none()
    ok = False
    try:
        ok = _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        ok = False
    ok = ok and user is not None and user.is_active
    session.add(LoginAttempt(account=account[:320], ip=ip[:64], succeeded=ok))
    if not ok:
        throttle.count(session, *counters)
    session.flush()
    if not ok or user is None:
        raise InvalidCredentials()
    return user


# --- web sessions --------------------------------------------------------------------------


@dataclass(frozen=True)
class NewWebSession:
    key: str  # goes into the signed cookie; never stored
    record: WebSession


def start_web_session(
    session: Session, *, user: User | None = None, resident: Resident | None = None
) -> NewWebSession:
    key = random_token()
    record = WebSession(
        key_hash=token_hash(key),
        user_id=user.id if user else None,
        resident_id=resident.id if resident else None,
        csrf_token=random_token(24),
        expires_at=utcnow() + timedelta(seconds=get_settings().session_max_age_s),
    )
    session.add(record)
    session.flush()
    return NewWebSession(key=key, record=record)


def find_web_session(session: Session, key: str) -> WebSession | None:
    """The live session for a cookie key; None when unknown, expired or revoked."""
    record = session.exec(
        select(WebSession).where(col(WebSession.key_hash) == token_hash(key))
    ).one_or_none()
    if record is None or record.revoked_at is not None or record.expires_at <= utcnow():
        return None
    return record


def end_web_session(session: Session, record: WebSession) -> None:
    record.revoked_at = utcnow()
    session.add(record)
    session.flush()


# --- API tokens ----------------------------------------------------------------------------


@dataclass(frozen=True)
class NewApiToken:
    token: str  # shown once
    record: ApiToken


def create_api_token(
    session: Session, *, user: User, name: str = "", actor: str | None = None
) -> NewApiToken:
    token = API_TOKEN_PREFIX + random_token(32)
    record = ApiToken(
        name=(name or "api").strip()[:100],
        token_hash=token_hash(token),
        prefix=token[:12],
        user_id=user.id,
        organisation_id=user.organisation_id,
    )
    session.add(record)
    session.flush()
    audit.record(
        session,
        actor=actor or f"user:{user.id}",
        action="api_token.created",
        subject_type="api_token",
        subject_id=record.id,
        payload={"name": record.name, "prefix": record.prefix, "user_id": str(user.id)},
    )
    return NewApiToken(token=token, record=record)


def find_api_token(
    session: Session, token: str
) -> tuple[ApiToken, User, Organisation | None] | None:
    """The live token, its user and the user's organisation, in one query (every API request
    asks): None if the token is unknown or revoked."""
    if not token.startswith(API_TOKEN_PREFIX):
        return None
    found = session.exec(
        select(ApiToken, User, Organisation)
        .join(User, col(User.id) == col(ApiToken.user_id))
        .outerjoin(Organisation, col(Organisation.id) == col(User.organisation_id))
        .where(col(ApiToken.token_hash) == token_hash(token))
    ).one_or_none()
    if found is None or found[0].revoked_at is not None:
        return None
    record, user, organisation = found
    return record, user, organisation


def list_api_tokens(session: Session, *, user: User) -> list[ApiToken]:
    query = (
        select(ApiToken)
        .where(col(ApiToken.user_id) == user.id)
        .order_by(col(ApiToken.created_at).desc())
    )
    return list(session.exec(query).all())


def revoke_api_token(session: Session, *, user: User, token_id: uuid.UUID) -> ApiToken:
    record = session.get(ApiToken, token_id)
    if record is None or (record.user_id != user.id and not user.is_platform_admin):
        raise NotFound(N_("No API token {token_id}."), token_id=str(token_id))
    if record.revoked_at is None:
        record.revoked_at = utcnow()
        session.add(record)
        session.flush()
        audit.record(
            session,
            actor=f"user:{user.id}",
            action="api_token.revoked",
            subject_type="api_token",
            subject_id=record.id,
            payload={"prefix": record.prefix},
        )
    return record


# --- residents -----------------------------------------------------------------------------


def create_resident(
    session: Session, *, phone: str, display_name: str = "", actor: str = "system:cli"
) -> Resident:
    normalised = pii.normalise_phone(phone)
    sealed = pii.seal(normalised, context=pii.PHONE)
    if find_resident_by_phone(session, normalised) is not None:
        raise Conflict(N_("A resident with this phone number already exists."))
    resident = Resident(
        phone_sealed=sealed.sealed, phone_index=sealed.index, display_name=display_name
    )
    session.add(resident)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="resident.created",
        subject_type="resident",
        subject_id=resident.id,
        payload={"phone": pii.mask_phone(normalised)},
    )
    return resident


def find_resident_by_phone(session: Session, phone: str) -> Resident | None:
    index = pii.blind_index(pii.normalise_phone(phone), context=pii.PHONE)
    return find_resident_by_phone_index(session, index)


def find_resident_by_phone_index(session: Session, phone_index: str) -> Resident | None:
    return session.exec(
        select(Resident).where(col(Resident.phone_index) == phone_index)
    ).one_or_none()


def update_resident_preferences(
    session: Session,
    resident: Resident,
    *,
    elder_mode: bool | None = None,
    locale: str | None = None,
    display_name: str | None = None,
) -> Resident:
    """A resident's own settings: elder mode (larger text and targets), language, name."""
    if locale is not None:
        if locale not in SUPPORTED_LOCALES:
            raise InvalidInput(
                N_("Unsupported language {language}."),
                language=locale,
                errors=[{"field": "locale", "message": "unsupported"}],
            )
        resident.locale = locale
    if elder_mode is not None:
        resident.elder_mode = elder_mode
    if display_name is not None:
        resident.display_name = display_name.strip()[:100]
    session.add(resident)
    session.flush()
    return resident


def resident_phone(resident: Resident) -> str:
    return pii.unseal(resident.phone_sealed, context=pii.PHONE)


def _code_hash(phone_index: str, code: str) -> str:
    key = get_settings().secret_key_value.encode()
    return hmac.new(key, f"{phone_index}:{code}".encode(), "sha256").hexdigest()


OTP_PER_ADDRESS_WINDOW = timedelta(hours=1)


def request_login_code(session: Session, *, phone: str, ip: str) -> None:
    """Send a one-time sign-in code by SMS, whether or not the phone belongs to a resident.

    A first sign-in creates the resident once the code is verified, so the answer never reveals
    who is registered. Limited to one code a minute and a few a day per phone, and a few an hour
    per client address; the counters are locked and counted in this transaction, before the
    message goes out, so parallel requests send exactly what the limits allow.
    """
    settings = get_settings()
    normalised = pii.normalise_phone(phone)
    index = pii.blind_index(normalised, context=pii.PHONE)
    minute, day, address = throttle.hold(
        session,
        (throttle.Limit("otp.phone.minute", 1, OTP_MIN_INTERVAL), normalised),
        (throttle.Limit("otp.phone.day", OTP_MAX_PER_DAY, timedelta(days=1)), normalised),
        (
            throttle.Limit(
                "otp.address", settings.otp_max_sends_per_address, OTP_PER_ADDRESS_WINDOW
            ),
            throttle.client_address(ip),
        ),
    )
    if minute.exhausted:
        raise RateLimited(
            N_("A code was sent less than a minute ago; please wait."),
            retry_after=minute.retry_after_s,
        )
    if day.exhausted:
        raise RateLimited(N_("Too many codes requested today for this phone number."))
    if address.exhausted:
        raise RateLimited(
            N_("Too many codes requested from this network; try again later."),
            retry_after=address.retry_after_s,
        )
    now = utcnow()
    code = "".join(secrets.choice("0123456789") for _ in range(OTP_DIGITS))
    session.add(
        OneTimeCode(
            phone_index=index,
            code_hash=_code_hash(index, code),
            expires_at=now + timedelta(seconds=settings.otp_ttl_s),
        )
    )
    throttle.count(session, minute, day, address)
    session.flush()
    sender(settings).send_code(normalised, code, minutes=settings.otp_ttl_s // 60)


def verify_login_code(session: Session, *, phone: str, code: str, ip: str) -> Resident:
    """Consume a valid code and return the resident (created on first sign-in).

    Wrong codes are counted on the code (a few tries each) and per client address (so that one
    client cannot try a code or two on each of many phones), both under a row lock taken before
    the code is compared.
    """
    settings = get_settings()
    normalised = pii.normalise_phone(phone)
    index = pii.blind_index(normalised, context=pii.PHONE)
    (address,) = throttle.hold(
        session,
        (
            throttle.Limit(
                "otp.verify.address",
                settings.otp_max_failures_per_address,
                timedelta(seconds=settings.login_window_s),
            ),
            throttle.client_address(ip),
        ),
    )
    if address.exhausted:
        raise RateLimited(
            N_("Too many wrong codes from this network; try again later."),
            retry_after=address.retry_after_s,
        )
    now = utcnow()
    pending = session.exec(
        select(OneTimeCode)
        .where(col(OneTimeCode.phone_index) == index)
        .where(col(OneTimeCode.consumed_at).is_(None))
        .where(col(OneTimeCode.expires_at) > now)
        .order_by(col(OneTimeCode.created_at).desc())
        .limit(1)
        .with_for_update()
    ).one_or_none()
    if pending is None or pending.attempts >= OTP_MAX_ATTEMPTS:
        throttle.count(session, address)
        session.flush()
        raise InvalidCode()
    if not hmac.compare_digest(pending.code_hash, _code_hash(index, pii.fold(code).strip())):
        pending.attempts += 1
        session.add(pending)
        throttle.count(session, address)
        session.flush()
        raise InvalidCode(
            N_("The code is wrong; {left} attempts left."),
            left=OTP_MAX_ATTEMPTS - pending.attempts,
        )
    pending.consumed_at = now
    session.add(pending)
    resident = find_resident_by_phone_index(session, index)
    if resident is None:
        resident = create_resident(session, phone=normalised, actor="resident:self")
    session.flush()
    return resident
