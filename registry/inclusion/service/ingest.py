"""Ingesting a signed batch of behaviour events from a data partner.

The request as a whole is authenticated first: a missing, wrong or stale signature, or one
already used, refuses it (401) before anything is written. Then each event is accepted or
rejected on its own, checked in this order (the first failing check is the reason):

1. ``duplicate``: the partner already sent this ``partner_event_id`` (earlier, or in this batch);
2. ``scenario_not_allowed``: the partner is not trusted for the scenario, or Tanhui has no
   methodology for it (or its variant) on the day it happened;
3. ``in_future`` / ``too_old``: more than 5 minutes ahead of the clock, or older than 7 days;
4. ``implausible``: against the scenario's physical rules (quantity, speed, whole units);
5. ``unknown_resident``: the phone, citizen card or id names no resident;
6. ``duplicate_activity``: another partner already reported the same act (the canonical activity
   fingerprints of :func:`mrv.inclusive.activity_keys`, claimed under a unique index, so that
   two partners racing each other cannot both win);
7. ``cap_exceeded``: the resident's daily cap for the scenario would be passed (a counter row per
   resident, scenario and day, locked in sorted order).

Accepted events post grams (``RED_G``) and points (``POINTS``) to the residents' accounts, one
journal entry per group of residents, and become carbon receipts. Everything is set-based: a
batch of 1,000 events costs a few dozen statements, not thousands (see bench/points.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine, delete, text, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

import wallet.service as wallet
from mrv.inclusive import (
    FactorTable,
    Problem,
    Quantification,
    Report,
    Timing,
    activity_keys,
    quantify,
    timing,
)
from registry.inclusion.errors import (
    BatchTooLarge,
    InvalidBatch,
    ReplayedRequest,
    SignatureRejected,
)
from registry.inclusion.models import (
    InclusionActivityKey,
    InclusionBatch,
    InclusionDailyUsage,
    InclusionEvent,
    InclusionPartner,
    InclusionPartnerKey,
    InclusionRejection,
)
from registry.inclusion.schemas import MAX_EVENTS_PER_BATCH, EventBatchIn, EventIn
from registry.inclusion.service import bulk
from registry.inclusion.service import residents as residents_service
from registry.inclusion.service.methodologies import factor_table
from registry.inclusion.service.signatures import verify
from tanhui import audit
from tanhui.db import database_kind, new_id, new_ids, retrying, utcnow
from tanhui.i18n import N_

LEDGER_SCOPE = "inclusion"
MAX_ATTEMPTS = 4

_EVENT = InclusionEvent.__table__  # type: ignore[attr-defined]
_KEY = InclusionActivityKey.__table__  # type: ignore[attr-defined]
_USAGE = InclusionDailyUsage.__table__  # type: ignore[attr-defined]
_BATCH = InclusionBatch.__table__  # type: ignore[attr-defined]
_REJECTION = InclusionRejection.__table__  # type: ignore[attr-defined]
_USAGE_KEY = ("resident_id", "scenario", "variant", "day")


@dataclass
class Outcome:
    """What became of one event (in the order received)."""

    partner_event_id: str
    reason: str | None = None
    grams: int = 0
    points: int = 0
    receipt_id: uuid.UUID | None = None

    @property
    def accepted(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class IngestResult:
    batch_id: uuid.UUID
    outcomes: list[Outcome]

    @property
    def accepted(self) -> int:
        return sum(1 for outcome in self.outcomes if outcome.accepted)

    @property
    def rejected(self) -> int:
        return len(self.outcomes) - self.accepted


@dataclass
class _Candidate:
    index: int
    event: EventIn
    figures: Quantification
    resident_id: uuid.UUID | None = None
    event_id: uuid.UUID | None = None
    keys: list[str] | None = None


def _insert(session: Session):  # type: ignore[no-untyped-def]
    return pg_insert if database_kind(session) == "postgresql" else sqlite_insert


def parse_batch(body: bytes) -> EventBatchIn:
    try:
        batch = EventBatchIn.model_validate_json(body)
    except ValidationError as error:
        problems = [
            {"field": ".".join(str(part) for part in item["loc"]), "message": item["msg"]}
            for item in error.errors(include_url=False)[:20]
        ]
        raise InvalidBatch(
            N_("The batch does not have the documented shape."), errors=problems
        ) from None
    if len(batch.events) > MAX_EVENTS_PER_BATCH:
        raise BatchTooLarge(
            N_("A batch has at most {maximum} events; this one has {count}."),
            maximum=MAX_EVENTS_PER_BATCH,
            count=len(batch.events),
        )
    return batch


def authenticate(
    session: Session,
    *,
    partner_ref: str | None,
    signature: str | None,
    body: bytes,
    now: datetime,
) -> tuple[InclusionPartner, InclusionBatch]:
    """The partner, once its signature is checked, and the batch row that claims it (401 if the
    signature was used before)."""
    try:
        partner_id = uuid.UUID((partner_ref or "").strip())
    except ValueError:
        raise SignatureRejected(N_("The X-Tanhui-Partner header names no partner.")) from None
    partner = session.get(InclusionPartner, partner_id)
    if partner is None or not partner.active:
        raise SignatureRejected(N_("The X-Tanhui-Partner header names no active partner."))
    keys = session.exec(
        select(InclusionPartnerKey)
        .where(col(InclusionPartnerKey.partner_id) == partner.id)
        .where(col(InclusionPartnerKey.revoked_at).is_(None))
    ).all()
    verified = verify(signature, body, keys, now=now)
    batch_id = new_id()
    claimed = session.execute(
        _insert(session)(_BATCH)
        .values(
            id=batch_id,
            partner_id=partner.id,
            key_id=verified.key.id,
            signature_hash=verified.signature_hash,
            signed_at=verified.signed_at,
            received_at=now,
            body_sha256=hashlib.sha256(body).hexdigest(),
            events=0,
            accepted=0,
            rejected=0,
        )
        .on_conflict_do_nothing(index_elements=["partner_id", "signature_hash"])
        .returning(_BATCH.c.id)
    ).all()
    if not claimed:
        raise ReplayedRequest(N_("This signature was already used; sign the request again."))
    batch = session.get(InclusionBatch, batch_id)
    assert batch is not None
    return partner, batch


def ingest(
    session: Session,
    *,
    partner_ref: str | None,
    signature: str | None,
    body: bytes,
    now: datetime | None = None,
    table: FactorTable | None = None,
) -> IngestResult:
    """Authenticate a batch and accept or reject each of its events (one transaction)."""
    moment = now or utcnow()
    partner, batch = authenticate(
        session, partner_ref=partner_ref, signature=signature, body=body, now=moment
    )
    events = parse_batch(body).events
    outcomes = [Outcome(event.partner_event_id) for event in events]
    factors = table or factor_table(session)

    candidates = _screen(session, partner, events, outcomes, factors, moment)
    candidates, accounts = _resolve_residents(session, candidates, outcomes)
    candidates, claimed = _claim_activities(session, partner, candidates, outcomes, moment)
    candidates = _apply_caps(session, candidates, outcomes)
    _release_keys(session, candidates, claimed)
    # The ledger comes last but for the audit record: it locks every credited resident's
    # balance rows until commit, so concurrent batches naming the same residents wait for
    # each other as briefly as possible. Receipts name the entry by an id chosen now.
    totals = _totals(candidates)
    entry_id = new_id() if totals else None
    _store(session, partner, batch, candidates, entry_id, outcomes, moment)
    rejected = [
        (outcome.partner_event_id, outcome.reason) for outcome in outcomes if outcome.reason
    ]
    bulk.insert(
        session,
        _REJECTION,
        [{"partner_event_id": pid, "reason": reason} for pid, reason in rejected],
        constants={"batch_id": batch.id, "created_at": moment},
    )
    accepted = len(outcomes) - len(rejected)
    session.execute(
        update(_BATCH)
        .where(_BATCH.c.id == batch.id)
        .values(events=len(outcomes), accepted=accepted, rejected=len(rejected))
    )
    if entry_id is not None:
        _post_to_ledger(session, partner, batch, totals, accounts, entry_id)
    reasons: dict[str, int] = defaultdict(int)
    for _pid, reason in rejected:
        reasons[str(reason)] += 1
    audit.record(
        session,
        actor=f"partner:{partner.id}",
        action="points.batch.ingested",
        subject_type="inclusion_batch",
        subject_id=batch.id,
        payload={
            "events": len(outcomes),
            "accepted": accepted,
            "grams": sum(outcome.grams for outcome in outcomes),
            "points": sum(outcome.points for outcome in outcomes),
            "rejected": dict(sorted(reasons.items())),
            "body_sha256": batch.body_sha256,
        },
    )
    return IngestResult(batch_id=batch.id, outcomes=outcomes)


def ingest_with_retries(
    engine: Engine,
    *,
    partner_ref: str | None,
    signature: str | None,
    body: bytes,
    now: datetime | None = None,
) -> IngestResult:
    """:func:`ingest` in its own transaction, retried on deadlocks and serialization failures,
    and on the rare unique-index race (two concurrent requests carrying the same event id: the
    second run sees the first's events and answers ``duplicate``)."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return retrying(
                engine,
                lambda session: ingest(
                    session, partner_ref=partner_ref, signature=signature, body=body, now=now
                ),
            )
        except IntegrityError:
            if attempt == MAX_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


# --- the checks, in order ------------------------------------------------------------------


def _screen(
    session: Session,
    partner: InclusionPartner,
    events: Sequence[EventIn],
    outcomes: list[Outcome],
    factors: FactorTable,
    now: datetime,
) -> list[_Candidate]:
    """Duplicates, permission, timing and plausibility (no per-event database work)."""
    earlier = _earlier_receipts(session, partner.id, [event.partner_event_id for event in events])
    allowed = set(partner.scenario_list)
    seen: set[str] = set()
    candidates: list[_Candidate] = []
    for index, event in enumerate(events):
        outcome = outcomes[index]
        if event.partner_event_id in seen or event.partner_event_id in earlier:
            outcome.reason = "duplicate"
            outcome.receipt_id = earlier.get(event.partner_event_id)
            continue
        seen.add(event.partner_event_id)
        if event.scenario not in allowed:
            outcome.reason = "scenario_not_allowed"
            continue
        when = timing(event.occurred_at, now)
        if when is not Timing.ok:
            outcome.reason = when.value
            continue
        result = quantify(
            Report(
                scenario=event.scenario,
                variant=event.variant,
                quantity=event.quantity,
                occurred_at=event.occurred_at,
                duration_s=event.duration_s,
            ),
            factors,
        )
        if isinstance(result, Problem):
            outcome.reason = (
                "implausible" if result is Problem.implausible else "scenario_not_allowed"
            )
            continue
        candidates.append(_Candidate(index=index, event=event, figures=result))
    return candidates


def _earlier_receipts(
    session: Session, partner_id: uuid.UUID, event_ids: list[str]
) -> dict[str, uuid.UUID]:
    if not event_ids:
        return {}
    wanted = sorted(set(event_ids))
    if bulk.is_postgresql(session):
        # One unique-index probe per id, whatever the statistics say: a plain ``= ANY(array)``
        # on a freshly loaded table is planned as a scan of the partner's rows, each compared
        # with the whole array.
        rows = session.execute(
            text(
                "SELECT v.pid, e.id FROM unnest(CAST(:ids AS text[])) AS v(pid) "
                "CROSS JOIN LATERAL (SELECT id FROM inclusion_event WHERE partner_id = :partner "
                "AND partner_event_id = v.pid LIMIT 1) AS e"
            ),
            {"ids": bulk.array_literal(wanted), "partner": partner_id},
        ).all()
    else:
        rows = session.execute(
            sa_select(_EVENT.c.partner_event_id, _EVENT.c.id)
            .where(_EVENT.c.partner_id == partner_id)
            .where(_EVENT.c.partner_event_id.in_(wanted))
        ).all()
    return {row[0]: row[1] for row in rows}


def _resolve_residents(
    session: Session, candidates: list[_Candidate], outcomes: list[Outcome]
) -> tuple[list[_Candidate], dict[uuid.UUID, tuple[uuid.UUID, uuid.UUID]]]:
    """The candidates whose resident exists, and the residents' (POINTS, RED_G) accounts where
    the lookup found them."""
    phones: dict[int, str] = {}
    cards: dict[int, str] = {}
    ids: dict[int, uuid.UUID] = {}
    indexed: dict[str, str | None] = {}  # this batch's phones (a daily export repeats them)
    for candidate in candidates:
        ref = candidate.event.resident
        given = [value for value in (ref.phone, ref.citizen_card, ref.resident_id) if value]
        if len(given) != 1:
            continue
        if ref.phone:
            index = indexed.get(ref.phone, "")
            if index == "":
                index = indexed[ref.phone] = residents_service.phone_index(ref.phone)
            if index:
                phones[candidate.index] = index
        elif ref.citizen_card:
            index = residents_service.card_index(ref.citizen_card)
            if index:
                cards[candidate.index] = index
        elif ref.resident_id:
            with contextlib.suppress(ValueError):
                ids[candidate.index] = uuid.UUID(ref.resident_id)
    found = residents_service.lookup(
        session, phone_indexes=phones.values(), card_indexes=cards.values(), ids=ids.values()
    )
    kept: list[_Candidate] = []
    ids_left = new_ids(len(candidates))
    for candidate in candidates:
        position = candidate.index
        resident_id: uuid.UUID | None = None
        if position in phones:
            resident_id = found.by_phone.get(phones[position])
        elif position in cards:
            resident_id = found.by_card.get(cards[position])
        elif position in ids and ids[position] in found.by_id:
            resident_id = ids[position]
        if resident_id is None:
            outcomes[position].reason = "unknown_resident"
            continue
        candidate.resident_id = resident_id
        candidate.event_id = ids_left[len(kept)]
        kept.append(candidate)
    return kept, found.accounts


def _claim_activities(
    session: Session,
    partner: InclusionPartner,
    candidates: list[_Candidate],
    outcomes: list[Outcome],
    now: datetime,
) -> tuple[list[_Candidate], set[str]]:
    """Claim every candidate's activity keys (claimed ``now``: pruned by that time, see
    :mod:`.retention`); an act whose key another partner owns is a duplicate activity. Keys
    claimed by events rejected later are released again."""
    if not candidates:
        return candidates, set()
    rows: dict[str, dict[str, Any]] = {}
    for candidate in candidates:
        assert candidate.resident_id is not None and candidate.event_id is not None
        candidate.keys = activity_keys(
            str(candidate.resident_id),
            candidate.event.scenario,
            candidate.event.variant,
            candidate.event.occurred_at,
        )
        for key in candidate.keys:
            if key not in rows:
                rows[key] = {"key": key, "event_id": candidate.event_id}
    ordered = [rows[key] for key in sorted(rows)]  # one insertion order: no deadlocks
    inserted = set(
        bulk.insert(
            session,
            _KEY,
            ordered,
            conflict=["key"],
            returning="key",
            constants={"partner_id": partner.id, "created_at": now},
        )
    )
    taken = sorted(set(rows) - inserted)
    foreign: set[str] = set()
    if taken and bulk.is_postgresql(session):
        foreign = set(
            session.execute(  # one primary-key probe per key (see _earlier_receipts)
                text(
                    "SELECT k.key FROM unnest(CAST(:keys AS text[])) AS v(key) CROSS JOIN LATERAL"
                    " (SELECT key FROM inclusion_activity_key WHERE key = v.key"
                    " AND partner_id <> :partner LIMIT 1) AS k"
                ),
                {"keys": "{" + ",".join(taken) + "}", "partner": partner.id},
            ).scalars()
        )
    elif taken:
        foreign = set(
            session.execute(
                sa_select(_KEY.c.key)
                .where(bulk.member_of(session, _KEY.c.key, taken))
                .where(_KEY.c.partner_id != partner.id)
            ).scalars()
        )
    kept = []
    for candidate in candidates:
        assert candidate.keys is not None
        if foreign.intersection(candidate.keys):
            outcomes[candidate.index].reason = "duplicate_activity"
            continue
        kept.append(candidate)
    return kept, inserted


def _apply_caps(
    session: Session, candidates: list[_Candidate], outcomes: list[Outcome]
) -> list[_Candidate]:
    """Count each candidate against its resident's daily cap, in the order received.

    The batch's quantities are added to their counters in one statement that also locks the
    rows (in sorted order); where a counter then passes its cap, the events of that counter are
    taken again one by one from its earlier value and the counter is corrected (still locked)."""
    if not candidates:
        return candidates
    totals: dict[tuple[Any, ...], int] = {}
    keys: list[tuple[Any, ...]] = []
    for candidate in candidates:
        key = _counter_key(candidate)
        keys.append(key)
        totals[key] = totals.get(key, 0) + candidate.figures.quantity_milli
    after = bulk.add_to_counters(session, _USAGE, totals, _USAGE_KEY, "quantity_milli")
    over: dict[tuple[Any, ...], int] = {}  # counter -> its value before this batch
    for candidate, key in zip(candidates, keys, strict=True):
        if key not in over and after[key] > _cap_milli(candidate):
            over[key] = after[key] - totals[key]
    if not over:
        return candidates
    kept = []
    for candidate, key in zip(candidates, keys, strict=True):
        if key in over:
            if over[key] + candidate.figures.quantity_milli > _cap_milli(candidate):
                outcomes[candidate.index].reason = "cap_exceeded"
                continue
            over[key] += candidate.figures.quantity_milli
        kept.append(candidate)
    bulk.set_counters(session, _USAGE, over, _USAGE_KEY, "quantity_milli")
    return kept


def _cap_milli(candidate: _Candidate) -> int:
    return int(candidate.figures.version.daily_cap * 1000)


def _counter_key(candidate: _Candidate) -> tuple[uuid.UUID, str, str, date]:
    assert candidate.resident_id is not None
    return (
        candidate.resident_id,
        candidate.event.scenario,
        candidate.event.variant,
        candidate.figures.day,
    )


def _release_keys(session: Session, accepted: list[_Candidate], claimed: set[str]) -> None:
    """Give back the activity keys this batch claimed for events it then rejected."""
    kept = {key for candidate in accepted for key in candidate.keys or ()}
    released = sorted(claimed - kept)
    if released:
        session.execute(delete(_KEY).where(bulk.member_of(session, _KEY.c.key, released)))


def _totals(candidates: list[_Candidate]) -> dict[uuid.UUID, tuple[int, int]]:
    """Each resident's grams and points in this batch (residents credited nothing left out)."""
    totals: dict[uuid.UUID, list[int]] = {}
    for candidate in candidates:
        assert candidate.resident_id is not None
        total = totals.get(candidate.resident_id)
        if total is None:
            total = totals[candidate.resident_id] = [0, 0]
        total[0] += candidate.figures.grams
        total[1] += candidate.figures.points
    return {resident: (g, p) for resident, (g, p) in totals.items() if g > 0 or p > 0}


def _post_to_ledger(
    session: Session,
    partner: InclusionPartner,
    batch: InclusionBatch,
    totals: dict[uuid.UUID, tuple[int, int]],
    known: dict[uuid.UUID, tuple[uuid.UUID, uuid.UUID]],
    entry_id: uuid.UUID,
) -> None:
    """Credit grams and points to the residents: one journal entry ``entry_id`` for the batch,
    debiting each issuance account once (a distribution, ADR 0073)."""
    missing = sorted(resident_id for resident_id in totals if resident_id not in known)
    accounts = {**known, **residents_service.accounts_of(session, missing)} if missing else known
    grams: list[tuple[uuid.UUID, int]] = []
    points: list[tuple[uuid.UUID, int]] = []
    for resident_id, (resident_grams, resident_points) in totals.items():
        points_account, grams_account = accounts[resident_id]
        if resident_grams > 0:
            grams.append((grams_account, resident_grams))
        if resident_points > 0:
            points.append((points_account, resident_points))
    distributions = []
    if grams:
        source = wallet.system_account(session, "issuance", wallet.ASSET_REDUCTION_G).id
        distributions.append(wallet.Distribution(source, grams))
    if points:
        source = wallet.system_account(session, "points_issuance", wallet.ASSET_POINTS).id
        distributions.append(wallet.Distribution(source, points))
    wallet.post_distribution(
        session,
        code="points_accrual",
        distributions=distributions,
        scope=LEDGER_SCOPE,
        metadata={"batch_id": str(batch.id), "partner_id": str(partner.id)},
        entry_id=entry_id,
    )


def _store(
    session: Session,
    partner: InclusionPartner,
    batch: InclusionBatch,
    candidates: list[_Candidate],
    entry_id: uuid.UUID | None,
    outcomes: list[Outcome],
    now: datetime,
) -> None:
    """Insert the receipts of the accepted events and fill in their outcomes."""
    rows = []
    for candidate in candidates:
        assert candidate.resident_id is not None and candidate.event_id is not None
        figures = candidate.figures
        event = candidate.event
        rows.append(
            {
                "id": candidate.event_id,
                "partner_event_id": event.partner_event_id,
                "resident_id": candidate.resident_id,
                "scenario": event.scenario,
                "variant": event.variant,
                "quantity_milli": figures.quantity_milli,
                "duration_s": event.duration_s,
                "occurred_at": event.occurred_at,
                "local_day": figures.day,
                "grams": figures.grams,
                "points": figures.points,
                "factor_version": figures.version.version,
                "grams_per_unit": str(figures.version.grams_per_unit),
                "points_rate_version": figures.rate.version,
                "points_per_kg": figures.rate.points_per_kg,
            }
        )
        outcome = outcomes[candidate.index]
        outcome.grams = figures.grams
        outcome.points = figures.points
        outcome.receipt_id = candidate.event_id
    bulk.insert(
        session,
        _EVENT,
        rows,
        constants={
            "batch_id": batch.id,
            "partner_id": partner.id,
            "journal_entry_id": entry_id,
            "received_at": now,
        },
    )
