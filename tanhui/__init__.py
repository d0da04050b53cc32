"""Tanhui (碳惠) kernel: settings, database, identity and access, crypto, audit, errors, app,
CLI."""

__version__ = "0.1.0"
