"""Use cases of the wallet package: plain functions taking a Session (they flush, never commit)."""
