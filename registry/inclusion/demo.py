"""Carbon inclusion in the Huzhou demo: three data partners (the bus group, a recycling
station, the Moganshan B&B union), residents whose receipts come from signed batches sent
through the real ingestion, last month's history, and the residents' (RES) project.

The partners' ids and signing secrets are written to ``<state dir>/demo-partners.json`` (mode
0600, like the other local secrets) so that a developer or a browser test can post signed
events to the running demo. Idempotent: a second run only rewrites that file.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from mrv.inclusive import LOCAL_TZ, local_date
from registry.inclusion.errors import PoolingError
from registry.inclusion.models import InclusionEvent, InclusionPartner, PartnerKeyKind
from registry.inclusion.service import ingest, partners, pooling, residents
from registry.inclusion.service.signatures import sign
from tanhui import identity
from tanhui.db import utcnow
from tanhui.models import Organisation, OrgKind
from tanhui.settings import get_settings

Progress = Callable[[str], None]
PARTNERS_FILE = "demo-partners.json"
BUS = "湖州公交集团（演示）"
RECYCLING = "湖州再生资源回收站（演示）"
BNB = "莫干山民宿联盟（演示）"
POOL_OPERATOR = "湖州市碳普惠居民减排池（演示）"
DEMO_PARTNERS: list[tuple[str, OrgKind, list[str]]] = [
    (BUS, OrgKind.data_partner, ["bus", "bike"]),
    (RECYCLING, OrgKind.data_partner, ["recycling", "second_hand"]),
    (BNB, OrgKind.merchant, ["tourism", "tableware"]),
]
RESIDENTS = [
    ("+8613800000001", "湖州居民"),
    ("+8613800000002", "王阿姨"),
    ("+8613800000003", "李师傅"),
    ("+8613800000004", "陈同学"),
    ("+8613800000005", "赵老师"),
    ("+8613800000006", "孙大爷"),
]


@dataclass(frozen=True)
class DemoPartner:
    name: str
    id: str
    secret: str


def _organisation(session: Session, name: str, kind: OrgKind) -> Organisation:
    found = session.exec(select(Organisation).where(col(Organisation.name) == name)).first()
    return found or identity.create_organisation(session, name=name, kind=kind, actor="system:demo")


def _partners(session: Session) -> list[DemoPartner]:
    made = []
    for name, kind, scenarios in DEMO_PARTNERS:
        organisation = _organisation(session, name, kind)
        partner = session.exec(
            select(InclusionPartner).where(col(InclusionPartner.organisation_id) == organisation.id)
        ).first()
        if partner is None:
            created = partners.create_partner(
                session, name=name, scenarios=scenarios, actor="system:demo"
            )
            made.append(DemoPartner(name, str(created.partner.id), created.secret))
            continue
        keys = [
            key
            for key in partners.keys_of(session, partner.id, active_only=True)
            if key.kind == PartnerKeyKind.hmac
        ]
        if keys:
            made.append(DemoPartner(name, str(partner.id), partners.secret_of(keys[-1]).decode()))
    return made


def _write_secrets(made: list[DemoPartner]) -> Path:
    folder = get_settings().state_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / PARTNERS_FILE
    document = {item.name: {"id": item.id, "secret": item.secret} for item in made}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(document, handle, ensure_ascii=False, indent=2)
    return path


def _send(
    session: Session, partner: DemoPartner, events: list[dict[str, Any]], now: datetime
) -> int:
    if not events:
        return 0
    raw = json.dumps({"events": events}, ensure_ascii=False).encode()
    result = ingest.ingest(
        session,
        partner_ref=partner.id,
        signature=sign(partner.secret, raw, timestamp=int(now.timestamp())),
        body=raw,
        now=now,
    )
    return result.accepted


def _day_of_events(
    rng: random.Random, by_name: dict[str, DemoPartner], phones: list[str], day: date, tag: str
) -> dict[str, list[dict[str, Any]]]:
    """One day of a small town's low-carbon behaviour, by partner."""
    batches: dict[str, list[dict[str, Any]]] = {BUS: [], RECYCLING: [], BNB: []}
    start = datetime(day.year, day.month, day.day, 7, 0, tzinfo=LOCAL_TZ)
    for number, phone in enumerate(phones):
        ref = {"phone": phone}
        for ride in range(2):  # to work and back
            batches[BUS].append(
                {
                    "partner_event_id": f"{tag}-bus-{number}-{ride}",
                    "resident": ref,
                    "scenario": "bus",
                    "quantity": round(rng.uniform(4, 14), 1),
                    "occurred_at": (start + timedelta(hours=10 * ride, minutes=number)).isoformat(),
                    "duration_s": 1800,
                }
            )
        if rng.random() < 0.5:
            batches[RECYCLING].append(
                {
                    "partner_event_id": f"{tag}-textile-{number}",
                    "resident": ref,
                    "scenario": "recycling",
                    "variant": "textile",
                    "quantity": round(rng.uniform(2, 25), 1),
                    "occurred_at": (start + timedelta(hours=4, minutes=number)).isoformat(),
                }
            )
        if rng.random() < 0.3:
            batches[RECYCLING].append(
                {
                    "partner_event_id": f"{tag}-phone-{number}",
                    "resident": ref,
                    "scenario": "second_hand",
                    "variant": "phone",
                    "quantity": 1,
                    "occurred_at": (start + timedelta(hours=5, minutes=number)).isoformat(),
                }
            )
        if rng.random() < 0.3:
            batches[BNB].append(
                {
                    "partner_event_id": f"{tag}-checkin-{number}",
                    "resident": ref,
                    "scenario": "tourism",
                    "quantity": 1,
                    "occurred_at": (start + timedelta(hours=3, minutes=number)).isoformat(),
                }
            )
    return batches


def seed(session: Session, progress: Progress) -> list[DemoPartner]:
    made = _partners(session)
    path = _write_secrets(made)
    progress(f"  points: {len(made)} data partners; their signing secrets are in {path}")
    if session.exec(select(func.count()).select_from(InclusionEvent)).one():
        return made
    by_name = {item.name: item for item in made}
    phones = []
    for phone, name in RESIDENTS:
        found = identity.find_resident_by_phone(session, phone)
        if found is None:
            found = residents.register_resident(
                session, phone=phone, display_name=name, actor="system:demo"
            )
        residents.open_accounts(session, found.id)
        phones.append(phone)
    rng = random.Random(2026)  # noqa: S311 - demo data, not a secret
    now = utcnow()
    today = local_date(now)
    history_start = today.replace(day=1) - timedelta(days=30)
    accepted = 0
    day = history_start
    while day < today:  # each day's batches are sent the next morning, as partners do
        sent_at = datetime(day.year, day.month, day.day, 23, 30, tzinfo=LOCAL_TZ)
        sent_at = min(sent_at, now)
        for name, events in _day_of_events(rng, by_name, phones, day, day.isoformat()).items():
            accepted += _send(session, by_name[name], events, sent_at)
        day += timedelta(days=1)
    progress(f"  points: {accepted} behaviours accepted from signed batches, with receipts")
    pool_operator = _organisation(session, POOL_OPERATOR, OrgKind.cooperative)
    _residents_project(session, pool_operator)
    last_month = (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    try:
        pool = pooling.pool_month(session, month=last_month, actor="system:demo")
    except PoolingError as error:
        progress(f"  points: pooling {last_month} not yet possible: {error}")
        return made
    outcome = pooling.submit_pool(session, pool) if pool.tonnes else "nothing to submit"
    if outcome == "submitted":
        _certify_and_issue(session, pool)
        outcome = str(pool.status)
    progress(
        f"  points: pooled {last_month}: {pool.pooled_g:,} g from {pool.residents} residents ="
        f" {pool.tonnes} t + {pool.carried_out_g:,} g carried over ({outcome})"
    )
    return made


def _certify_and_issue(session: Session, pool: Any) -> None:
    """The demo's verifier certifies the pool's period and the authority files and issues it,
    so the pooled tonnes are a serial-numbered batch the market can sell."""
    from registry.service import issuance, projects
    from registry.service.actors import Actor
    from tanhui.models import Role

    def acting(kind: OrgKind) -> Actor | None:
        found = [o for o in identity.list_organisations(session) if o.kind == kind]
        if not found:
            return None
        return Actor(ref="system:demo", organisation_id=found[0].id, org_kind=kind, role=Role.owner)

    verifier, authority = acting(OrgKind.verifier), acting(OrgKind.authority)
    if verifier is None or authority is None or pool.monitoring_period_id is None:
        return
    projects.certify(session, actor=verifier, period_id=pool.monitoring_period_id)
    projects.file_period(session, actor=authority, period_id=pool.monitoring_period_id)
    issuance.issue(session, actor=authority, period_id=pool.monitoring_period_id)
    pooling.settle_pools(session)


def _residents_project(session: Session, operator: Organisation) -> None:
    from registry.models import ProjectType
    from registry.service import projects
    from registry.service.actors import Actor
    from tanhui.models import Role

    if projects.find_by_code(session, "RES0001") is not None:
        return
    projects.create_project(
        session,
        actor=Actor(
            ref="system:demo",
            organisation_id=operator.id,
            org_kind=OrgKind.cooperative,
            role=Role.owner,
        ),
        cooperative_id=operator.id,
        code="RES0001",
        name="湖州居民低碳行为减排量归集（演示）",
        type=ProjectType.residents,
        methodology_name=pooling.METHODOLOGY_NAME,
        methodology_version=pooling.METHODOLOGY_VERSION,
        crediting_start=date(2026, 1, 1),
        crediting_end=date(2035, 12, 31),
        description="Residents' pooled reductions from Tanhui carbon inclusion (demo).",
    )
