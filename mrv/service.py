"""Use cases of the mrv package: plain functions taking a Session (they flush, never commit)."""
