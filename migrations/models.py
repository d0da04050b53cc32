"""Every package's tables, for Alembic and for the schema test: the one place that imports all
models (besides the app factory)."""

import importlib

from sqlalchemy import MetaData
from sqlmodel import SQLModel

MODEL_MODULES = (
    "tanhui.models",
    "tanhui.translog.models",
    "wallet.models",
    "registry.models",
    "registry.inclusion.models",
    "market.models",
    "market.rewards.models",
)


def all_metadata() -> MetaData:
    for module in MODEL_MODULES:
        importlib.import_module(module)
    return SQLModel.metadata
