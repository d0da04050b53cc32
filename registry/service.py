"""Use cases of the registry package: plain functions taking a Session (they flush, never
commit)."""
