"""Use cases of the market package: plain functions taking a Session (they flush, never commit)."""
