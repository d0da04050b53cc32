"""Settings from the environment (prefix ``TANHUI_``), with safe local defaults for the demo.

Secrets are never in code: in development the ones that are missing are generated once into the
git-ignored state folder (``.tanhui/`` by default) and reused; in production they must be given.
"""

from __future__ import annotations

import base64
import os
import secrets
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PLACEHOLDER_MARKERS = ("change", "placeholder", "example", "secret", "xxx", "todo", "dummy")
MIN_SECRET_KEY_LENGTH = 32
DATA_KEY_BYTES = 32
SECRETS_FILE_NAME = "secrets.env"
SMS_PROVIDERS = ("log", "aliyun")


class Environment(StrEnum):
    development = "development"
    production = "production"
    test = "test"


class SettingsError(Exception):
    """A setting is malformed or missing; the message is one line meant for an operator."""


class Settings(BaseSettings):
    """Everything Tanhui reads from its environment. Field names map to ``TANHUI_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="TANHUI_", extra="ignore", frozen=True)

    env: Environment = Environment.development
    database_url: str = "sqlite:///./tanhui.db"
    secret_key: SecretStr | None = None
    data_key: SecretStr | None = Field(default=None, description="base64 of 32 random bytes")
    signing_key_file: Path | None = None
    state_dir: Path = Path(".tanhui")
    base_url: str = "http://127.0.0.1:8000"

    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str | None = None
    stripe_payment_method_types: Annotated[list[str], NoDecode] = ["card", "wechat_pay"]
    stripe_webhook_tolerance_s: int = Field(default=300, gt=0)

    # The registry: how far a parcel's registered (certificate) area may be from its measured
    # polygon before a verifier must accept the difference, in basis points (500 = 5 %).
    registry_area_tolerance_bp: int = Field(default=500, ge=0, le=10_000)

    # The market: platform fee on each sale in basis points (300 = 3 %), how long an order
    # holds its tonnes while the buyer pays, and the account enterprises pay bank transfers to.
    market_fee_bp: int = Field(default=300, ge=0, le=10_000)
    market_order_hold_s: int = Field(default=30 * 60, ge=60, le=24 * 3600)
    market_bank_transfer_hold_s: int = Field(default=3 * 24 * 3600, ge=3600, le=30 * 24 * 3600)
    # A buyer whose unified social credit code staff have not verified holds tonnes this long
    # at most (card checkouts: Stripe still needs its 32 minutes) and cannot pay by transfer.
    market_unverified_hold_s: int = Field(default=15 * 60, ge=60, le=24 * 3600)
    # Tonnes one buyer may hold unpaid at once: this share (basis points) of the tonnes listed
    # on selling listings, but never less than the floor (a small market still sells).
    market_buyer_hold_share_bp: int = Field(default=2_500, ge=1, le=10_000)
    market_buyer_hold_min_t: int = Field(default=100, ge=0)
    market_bank_account: str = (
        "中国工商银行湖州分行 | 碳惠平台运营（演示） | 1205 0201 0900 0123 456"
    )

    session_max_age_s: int = Field(default=8 * 3600, gt=0)
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    login_max_failures_per_account: int = Field(default=5, gt=0)
    login_max_failures_per_ip: int = Field(default=20, gt=0)
    login_window_s: int = Field(default=15 * 60, gt=0)
    otp_ttl_s: int = Field(default=300, gt=0)
    # Sign-in codes sent to any phone from one client address (IPv6: one /64) per hour, and
    # wrong codes tried from one address per login window.
    otp_max_sends_per_address: int = Field(default=30, gt=0)
    otp_max_failures_per_address: int = Field(default=20, gt=0)
    db_pool_size: int = Field(default=10, gt=0)
    # Text messages: ``log`` (development only: codes on the console) or ``aliyun`` (Alibaba
    # Cloud SMS, with the AccessKey pair, the approved signature name and the code template
    # whose variable is ``${code}``).
    sms_provider: str = "log"
    sms_access_key_id: str | None = None
    sms_access_key_secret: SecretStr | None = None
    sms_sign_name: str = "碳惠"
    sms_template_code: str = ""
    sms_endpoint: str = "https://dysmsapi.aliyuncs.com/"
    audit_checkpoint_every: int = Field(default=100, gt=0)
    # How long a household's statement link (``/h/{token}``, sent by SMS) stays valid.
    household_link_days: int = Field(default=180, gt=0)
    # MRV estimates (``tanhui mrv estimate`` and the cooperative portal's runs) go to this Dask
    # scheduler when set (optional extra ``tanhui[dist]``); unset: they run in the process.
    mrv_scheduler: str | None = None
    # A portal MRV run that has not finished after this many seconds is stopped (and failed).
    mrv_time_budget_s: int = Field(default=3600, ge=0)

    @field_validator("database_url")
    @classmethod
    def _normalise_database_url(cls, value: str) -> str:
        if value.startswith(("postgresql://", "postgres://")):
            return "postgresql+psycopg://" + value.split("://", 1)[1]
        if value.startswith(("postgresql+psycopg://", "sqlite://")):
            return value
        raise ValueError("must start with sqlite:/// or postgresql://")

    @field_validator("sms_provider")
    @classmethod
    def _check_sms_provider(cls, value: str) -> str:
        provider = value.strip().lower()
        if provider not in SMS_PROVIDERS:
            raise ValueError(f"must be one of {', '.join(SMS_PROVIDERS)}")
        return provider

    @model_validator(mode="after")
    def _check_sms_credentials(self) -> Settings:
        if self.sms_provider == "aliyun":
            missing = [
                name
                for name, value in (
                    ("TANHUI_SMS_ACCESS_KEY_ID", self.sms_access_key_id),
                    ("TANHUI_SMS_ACCESS_KEY_SECRET", self.sms_access_key_secret),
                    ("TANHUI_SMS_TEMPLATE_CODE", self.sms_template_code),
                    ("TANHUI_SMS_SIGN_NAME", self.sms_sign_name),
                )
                if not value
            ]
            if missing:
                raise ValueError("the aliyun SMS provider needs " + ", ".join(missing))
        return self

    @field_validator("mrv_scheduler", mode="before")
    @classmethod
    def _check_mrv_scheduler(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return check_scheduler_address(str(value))

    @field_validator("stripe_payment_method_types", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("data_key")
    @classmethod
    def _check_data_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        try:
            raw = base64.b64decode(value.get_secret_value(), validate=True)
        except ValueError as exc:
            raise ValueError("must be base64") from exc
        if len(raw) != DATA_KEY_BYTES:
            raise ValueError(f"must decode to {DATA_KEY_BYTES} bytes, got {len(raw)}")
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def signing_key_path(self) -> Path:
        return self.signing_key_file or self.state_dir / "signing_key.pem"

    @property
    def data_key_bytes(self) -> bytes:
        if self.data_key is None:
            raise SettingsError("TANHUI_DATA_KEY is not set")
        return base64.b64decode(self.data_key.get_secret_value())

    @property
    def secret_key_value(self) -> str:
        if self.secret_key is None:
            raise SettingsError("TANHUI_SECRET_KEY is not set")
        return self.secret_key.get_secret_value()


SCHEDULER_SCHEMES = ("tcp", "tls", "inproc", "ucx", "ws", "wss")
SCHEDULER_EXAMPLE = "tcp://10.0.0.5:8786"


def check_scheduler_address(value: str) -> str:
    """A Dask scheduler address (``tcp://host:port``, ``host:port``, ``tls://…``, ``inproc://…``).

    Returns it stripped; raises ``ValueError`` with a one-line reason when it is malformed.
    """
    address = value.strip()
    scheme, separator, rest = address.partition("://")
    if not separator:
        scheme, rest = "tcp", address
    reason = f"must be a Dask scheduler address such as {SCHEDULER_EXAMPLE}"
    if scheme not in SCHEDULER_SCHEMES:
        raise ValueError(
            f"{reason} (scheme {scheme!r} is not one of {', '.join(SCHEDULER_SCHEMES)})"
        )
    if any(character.isspace() for character in rest) or not rest:
        raise ValueError(reason)
    if scheme == "inproc":
        return address
    try:
        parts = urlsplit("//" + rest)
        port = parts.port
    except ValueError:
        raise ValueError(f"{reason} (bad port)") from None
    if not parts.hostname or parts.path not in {"", "/"} or parts.query or parts.fragment:
        raise ValueError(reason)
    if parts.username is not None or parts.password is not None:
        raise ValueError(reason)
    if port == 0:
        raise ValueError(f"{reason} (bad port)")
    return address


def _looks_like_placeholder(value: str) -> bool:
    lowered = value.lower()
    return any(marker in lowered for marker in PLACEHOLDER_MARKERS)


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment; raise :class:`SettingsError` with one clear line."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "TANHUI_" + str(first["loc"][0]).upper() if first["loc"] else "TANHUI_*"
        raise SettingsError(f"invalid setting {name}: {first['msg']}") from None


def check_production(settings: Settings) -> None:
    """Refuse to serve production traffic on missing or placeholder secrets."""
    problems: list[str] = []
    secret_key = settings.secret_key.get_secret_value() if settings.secret_key else ""
    if len(secret_key) < MIN_SECRET_KEY_LENGTH or _looks_like_placeholder(secret_key):
        problems.append(
            f"TANHUI_SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} random characters"
        )
    if settings.data_key is None:
        problems.append("TANHUI_DATA_KEY must be set (base64 of 32 random bytes)")
    elif len(set(settings.data_key_bytes)) < 8:
        problems.append("TANHUI_DATA_KEY looks like a placeholder (too few distinct bytes)")
    if settings.signing_key_file is None or not settings.signing_key_file.exists():
        problems.append("TANHUI_SIGNING_KEY_FILE must point to an existing Ed25519 key")
    if settings.sms_provider == "log":
        problems.append(
            "TANHUI_SMS_PROVIDER=log writes sign-in codes to the log; set it to aliyun"
            " with its TANHUI_SMS_ACCESS_KEY_ID and TANHUI_SMS_ACCESS_KEY_SECRET"
        )
    elif settings.sms_access_key_secret is not None and _looks_like_placeholder(
        settings.sms_access_key_secret.get_secret_value()
    ):
        problems.append("TANHUI_SMS_ACCESS_KEY_SECRET looks like a placeholder")
    if settings.stripe_secret_key is not None and settings.stripe_webhook_secret is None:
        problems.append("TANHUI_STRIPE_WEBHOOK_SECRET is required with TANHUI_STRIPE_SECRET_KEY")
    if problems:
        raise SettingsError("refusing to start in production: " + "; ".join(problems))


def with_local_secrets(settings: Settings) -> Settings:
    """Fill missing secrets from (or generate them into) the git-ignored state folder.

    Only outside production: the demo and a developer's ``serve`` need no configuration, while a
    production deployment must say where its secrets are.
    """
    if settings.env is Environment.production:
        check_production(settings)
        return settings
    if settings.secret_key is not None and settings.data_key is not None:
        return settings
    state_dir = settings.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    secrets_file = state_dir / SECRETS_FILE_NAME
    stored: dict[str, str] = {}
    if secrets_file.exists():
        for line in secrets_file.read_text("utf-8").splitlines():
            if "=" in line and not line.startswith("#"):
                key, value = line.split("=", 1)
                stored[key.strip()] = value.strip()
    changed = False
    if "TANHUI_SECRET_KEY" not in stored:
        stored["TANHUI_SECRET_KEY"] = secrets.token_urlsafe(48)
        changed = True
    if "TANHUI_DATA_KEY" not in stored:
        stored["TANHUI_DATA_KEY"] = base64.b64encode(secrets.token_bytes(DATA_KEY_BYTES)).decode()
        changed = True
    if changed:
        body = "# generated by tanhui for local use; never commit\n" + "".join(
            f"{key}={value}\n" for key, value in sorted(stored.items())
        )
        secrets_file.write_text(body, "utf-8")
        os.chmod(secrets_file, 0o600)
    return settings.model_copy(
        update={
            "secret_key": settings.secret_key or SecretStr(stored["TANHUI_SECRET_KEY"]),
            "data_key": settings.data_key or SecretStr(stored["TANHUI_DATA_KEY"]),
        }
    )


_current: Settings | None = None


def use_settings(settings: Settings) -> None:
    """Make ``settings`` the process-wide settings (the app factory and the CLI call this)."""
    global _current  # noqa: PLW0603 - one process, one configuration
    _current = settings


def get_settings() -> Settings:
    """The process-wide settings; loaded from the environment on first use."""
    global _current  # noqa: PLW0603
    if _current is None:
        _current = with_local_secrets(load_settings())
    return _current
