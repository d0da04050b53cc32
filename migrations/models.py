"""Every package's tables, for Alembic and for the schema test: the one place that imports all
models (besides the app factory)."""

from sqlalchemy import MetaData
from sqlmodel import SQLModel


def all_metadata() -> MetaData:
    import market.models  # noqa: F401
    import registry.inclusion.models  # noqa: F401
    import registry.models  # noqa: F401
    import wallet.models  # noqa: F401

    return SQLModel.metadata
