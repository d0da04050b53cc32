"""What ingestion keeps only while it can still decide something: activity fingerprints and
daily-cap counters.

An event older than ``MAX_AGE`` is refused (``too_old``) before either is consulted, so a
fingerprint claimed long enough ago can never match an event that could still be accepted, and a
counter of a day that long past is never read again. Both tables would otherwise grow with every
event for ever (two fingerprints and up to one counter per event), and the fingerprint index, in
which every claim lands on a random leaf, gets slower as it grows. Receipts, the record of what was
credited, are never pruned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import delete, tuple_
from sqlalchemy import select as sa_select
from sqlmodel import Session

from mrv.inclusive import FUTURE_TOLERANCE, MAX_AGE
from mrv.inclusive.factors import local_date
from registry.inclusion.models import InclusionActivityKey, InclusionDailyUsage
from tanhui.db import utcnow

# A stored act happened at most FUTURE_TOLERANCE after its key was claimed; a new act can be
# accepted only if it happened at most MAX_AGE ago; their keys can coincide only if the two acts
# are at most a bucket pair (2 h for the widest radius) or one calendar day apart. Two days on top
# of the window leave a margin for all of these.
KEY_RETENTION = MAX_AGE + FUTURE_TOLERANCE + timedelta(days=2)
COUNTER_RETENTION_DAYS = MAX_AGE.days + 2

_KEY = InclusionActivityKey.__table__  # type: ignore[attr-defined]
_USAGE = InclusionDailyUsage.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Pruned:
    keys: int
    counters: int


def key_cutoff(now: datetime) -> datetime:
    """Fingerprints claimed before this moment can match no acceptable event any more."""
    return now - KEY_RETENTION


def counter_cutoff(now: datetime) -> date:
    """Counters of days before this one are never read again."""
    return local_date(now) - timedelta(days=COUNTER_RETENTION_DAYS)


def prune(session: Session, *, now: datetime | None = None, limit: int = 10_000) -> Pruned:
    """Delete up to ``limit`` expired fingerprints and up to ``limit`` expired counters (call it
    again until it deletes fewer: short transactions, no long lock on the hot tables)."""
    moment = now or utcnow()
    keys = sa_select(_KEY.c.key).where(_KEY.c.created_at < key_cutoff(moment)).limit(limit)
    removed_keys = session.execute(delete(_KEY).where(_KEY.c.key.in_(keys)))
    columns = (_USAGE.c.resident_id, _USAGE.c.scenario, _USAGE.c.variant, _USAGE.c.day)
    counters = sa_select(*columns).where(_USAGE.c.day < counter_cutoff(moment)).limit(limit)
    removed_counters = session.execute(delete(_USAGE).where(tuple_(*columns).in_(counters)))
    return Pruned(
        keys=int(removed_keys.rowcount),  # type: ignore[attr-defined]
        counters=int(removed_counters.rowcount),  # type: ignore[attr-defined]
    )
