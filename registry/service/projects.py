"""Projects and their lifecycle (收储 → 核证 → 备案 → 签发).

Each arrow is one function here with its role check and an audit record:

    draft ──collect──▶ collected ──submit──▶ submitted ──certify──▶ certified ──file──▶ filed
      ▲                    ▲  ▲                  │                                        │
      └──────return────────┘  └──submit── issued ◀──────────────issue─────────────────────┘
    any active state ──suspend──▶ suspended ──resume──▶ the state before
    any state but terminated ──terminate──▶ terminated

Cooperatives build, collect and submit; verifiers certify or return; the authority files and
issues (issuance lives in :mod:`registry.service.issuance`), suspends, resumes and terminates.
Platform administrators may suspend, resume and terminate, but never certify, file or issue:
separation of duties holds for every account.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
import shapely
from sqlmodel import Session, col, func, select

from registry import geo
from registry import methodologies as methodology_terms
from registry.errors import (
    DuplicateCode,
    InvalidReport,
    InvalidTransition,
    PooledOnly,
    RegistryNotFound,
)
from registry.models import (
    Contract,
    ContractParcel,
    ContractStatus,
    MonitoringPeriod,
    Parcel,
    PeriodStatus,
    Project,
    ProjectParcel,
    ProjectStatus,
    ProjectType,
)
from registry.reports import ReportError, ReportSummary, certification_message, read_report
from registry.serials import PROJECT_CODE_PATTERN
from registry.service import ground, keys, measured
from registry.service import parcels as parcel_service
from registry.service.actors import Actor, ensure_own, require
from tanhui import audit
from tanhui.db import utcnow
from tanhui.errors import InvalidInput
from tanhui.i18n import N_
from tanhui.models import OrgKind

ACTIVE_STATES = (
    ProjectStatus.draft,
    ProjectStatus.collected,
    ProjectStatus.submitted,
    ProjectStatus.certified,
    ProjectStatus.filed,
    ProjectStatus.issued,
)
MAX_PARCELS_PER_CALL = 20_000


def _refuse(project: Project, action: str, expected: Sequence[ProjectStatus]) -> InvalidTransition:
    return InvalidTransition(
        N_("Project {code} is {status}; {action} needs {expected}."),
        code=project.code,
        status=str(project.status),
        action=action,
        expected=" or ".join(state.value for state in expected),
    )


def _move(
    session: Session,
    project: Project,
    *,
    actor: Actor,
    action: str,
    to: ProjectStatus,
    payload: dict[str, Any] | None = None,
) -> None:
    before = project.status
    project.status = to
    project.updated_at = utcnow()
    session.add(project)
    session.flush()
    audit.record(
        session,
        actor=actor.ref,
        action=f"project.{action}",
        subject_type="project",
        subject_id=project.id,
        payload={"code": project.code, "from": str(before), "to": str(to), **(payload or {})},
    )


def _lock(session: Session, project_id: uuid.UUID) -> Project | None:
    return session.exec(
        select(Project).where(col(Project.id) == project_id).with_for_update()
    ).one_or_none()


# --- reading -------------------------------------------------------------------------------


def get_project(
    session: Session, *, actor: Actor, project_id: uuid.UUID, lock: bool = False
) -> Project:
    """A project the actor may see: its cooperative's, or any for verifiers, the authority and
    platform administrators (who review them)."""
    project = _lock(session, project_id) if lock else session.get(Project, project_id)
    if project is None:
        raise RegistryNotFound(N_("No {what} {id}."), what="project", id=str(project_id))
    if actor.org_kind not in {OrgKind.verifier, OrgKind.authority}:
        ensure_own(actor, project.cooperative_id, what="project", object_id=project_id)
    return project


def get_project_unchecked(session: Session, project_id: uuid.UUID) -> Project:
    """A project by id, for presenting objects already checked (no permission check)."""
    project = session.get(Project, project_id)
    if project is None:
        raise RegistryNotFound(N_("No {what} {id}."), what="project", id=str(project_id))
    return project


def parcel_count(session: Session, project_id: uuid.UUID) -> int:
    return int(
        session.exec(
            select(func.count())
            .select_from(ProjectParcel)
            .where(col(ProjectParcel.project_id) == project_id)
        ).one()
    )


def find_by_code(session: Session, code: str) -> Project | None:
    return session.exec(select(Project).where(col(Project.code) == code.strip().upper())).first()


def list_projects(session: Session, *, actor: Actor) -> list[Project]:
    query = select(Project).order_by(col(Project.code))
    if not actor.is_platform_admin and actor.org_kind not in {OrgKind.verifier, OrgKind.authority}:
        query = query.where(col(Project.cooperative_id) == actor.organisation_id)
    return list(session.exec(query).all())


def project_parcels(session: Session, project_id: uuid.UUID) -> list[Parcel]:
    return list(
        session.exec(
            select(Parcel)
            .join(ProjectParcel, col(ProjectParcel.parcel_id) == col(Parcel.id))
            .where(col(ProjectParcel.project_id) == project_id)
            .order_by(col(Parcel.code))
        ).all()
    )


def periods(session: Session, project_id: uuid.UUID) -> list[MonitoringPeriod]:
    return list(
        session.exec(
            select(MonitoringPeriod)
            .where(col(MonitoringPeriod.project_id) == project_id)
            .order_by(col(MonitoringPeriod.number))
        ).all()
    )


def get_period(
    session: Session, *, actor: Actor, period_id: uuid.UUID
) -> tuple[MonitoringPeriod, Project]:
    period = session.get(MonitoringPeriod, period_id)
    if period is None:
        raise RegistryNotFound(N_("No {what} {id}."), what="monitoring period", id=str(period_id))
    project = get_project(session, actor=actor, project_id=period.project_id)
    return period, project


def ensure_draft(project: Project, *, action: str) -> None:
    if project.status != ProjectStatus.draft:
        raise _refuse(project, action, [ProjectStatus.draft])


# --- building a project --------------------------------------------------------------------


def create_project(
    session: Session,
    *,
    actor: Actor,
    cooperative_id: uuid.UUID,
    code: str,
    name: str,
    type: ProjectType,
    methodology_name: str,
    methodology_version: str,
    crediting_start: date,
    crediting_end: date,
    description: str = "",
) -> Project:
    require(actor, OrgKind.cooperative, action="Creating a project", admin=False)
    ensure_own(actor, cooperative_id, what="cooperative", object_id=cooperative_id)
    code = code.strip().upper()
    if not PROJECT_CODE_PATTERN.match(code):
        raise InvalidInput(
            N_("A project code has 2 to 12 capital letters and digits, starting with a letter."),
            errors=[{"field": "code", "message": "e.g. AJ0001"}],
        )
    if crediting_end <= crediting_start:
        raise InvalidInput(
            N_("The crediting period must end after it starts."),
            errors=[{"field": "crediting_end", "message": "after crediting_start"}],
        )
    if not name.strip() or not methodology_name.strip() or not methodology_version.strip():
        raise InvalidInput(N_("A project needs a name and a methodology with its version."))
    methodology_name, methodology_version = methodology_name.strip(), methodology_version.strip()
    methodology_terms.check_registration(
        methodology_name, methodology_version, type, crediting_start, crediting_end
    )
    if find_by_code(session, code) is not None:
        raise DuplicateCode(N_("The project code {code} is already taken."), code=code)
    project = Project(
        code=code,
        name=name.strip()[:200],
        type=type,
        methodology_name=methodology_name.strip()[:100],
        methodology_version=methodology_version.strip()[:20],
        cooperative_id=cooperative_id,
        crediting_start=crediting_start,
        crediting_end=crediting_end,
        description=description.strip(),
    )
    session.add(project)
    session.flush()
    audit.record(
        session,
        actor=actor.ref,
        action="project.created",
        subject_type="project",
        subject_id=project.id,
        payload={"code": code, "type": str(type), "methodology": methodology_name},
    )
    return project


def add_parcels(
    session: Session, *, actor: Actor, project_id: uuid.UUID, parcel_ids: Sequence[uuid.UUID]
) -> Project:
    """Put registered parcels into a draft project, refusing overlaps with the parcels of live
    projects and with ground any project ever claimed for overlapping years."""
    require(actor, OrgKind.cooperative, action="Adding parcels", admin=False)
    project = get_project(session, actor=actor, project_id=project_id, lock=True)
    ensure_draft(project, action="adding parcels")
    wanted = list(dict.fromkeys(parcel_ids))
    if not wanted or len(wanted) > MAX_PARCELS_PER_CALL:
        raise InvalidInput(N_("Give 1 to {maximum} parcels."), maximum=MAX_PARCELS_PER_CALL)
    found: dict[uuid.UUID, Parcel] = {}
    for start in range(0, len(wanted), 1000):
        for parcel in session.exec(
            select(Parcel).where(col(Parcel.id).in_(wanted[start : start + 1000]))
        ).all():
            found[parcel.id] = parcel
    missing = [
        pid
        for pid in wanted
        if pid not in found or found[pid].cooperative_id != project.cooperative_id
    ]
    if missing:
        raise RegistryNotFound(N_("No {what} {id}."), what="parcel", id=str(missing[0]))
    already = set(
        session.exec(
            select(ProjectParcel.parcel_id).where(col(ProjectParcel.project_id) == project.id)
        ).all()
    )
    new = [found[pid] for pid in wanted if pid not in already]
    if new:
        methodology_terms.check_land(
            project.methodology_name,
            project.methodology_version,
            {str(parcel.land_type) for parcel in new},
        )
        projected = list(shapely.from_wkb(np.asarray([p.geometry_wkb for p in new], dtype=object)))
        findings = parcel_service.find_overlaps(
            session,
            projected,
            exclude_parcels=[p.id for p in new],
            new_codes=[p.code for p in new],
        )
        parcel_service.refuse_overlaps(findings, [p.code for p in new])
        ground.claim(session, project, new)
        for parcel in new:
            session.add(ProjectParcel(project_id=project.id, parcel_id=parcel.id))
        session.flush()
        refresh_outline(session, project)
        audit.record(
            session,
            actor=actor.ref,
            action="project.parcels_added",
            subject_type="project",
            subject_id=project.id,
            payload={
                "code": project.code,
                "parcels": [p.code for p in new][:1000],
                "count": len(new),
            },
        )
    return project


def remove_parcels(
    session: Session, *, actor: Actor, project_id: uuid.UUID, parcel_ids: Sequence[uuid.UUID]
) -> Project:
    require(actor, OrgKind.cooperative, action="Removing parcels", admin=False)
    project = get_project(session, actor=actor, project_id=project_id, lock=True)
    ensure_draft(project, action="removing parcels")
    links = session.exec(
        select(ProjectParcel)
        .where(col(ProjectParcel.project_id) == project.id)
        .where(col(ProjectParcel.parcel_id).in_(list(parcel_ids)))
    ).all()
    for link in links:
        session.delete(link)
    session.flush()
    ground.release(session, project.id, [link.parcel_id for link in links])
    refresh_outline(session, project)
    audit.record(
        session,
        actor=actor.ref,
        action="project.parcels_removed",
        subject_type="project",
        subject_id=project.id,
        payload={"code": project.code, "count": len(links)},
    )
    return project


def refresh_outline(session: Session, project: Project) -> None:
    """Recompute the project's district (where most of its area lies) and public outline."""
    rows = session.exec(
        select(Parcel.geometry_wkb, Parcel.district_adcode, Parcel.area_m2)
        .join(ProjectParcel, col(ProjectParcel.parcel_id) == col(Parcel.id))
        .where(col(ProjectParcel.project_id) == project.id)
    ).all()
    weights: Counter[str] = Counter()
    for _wkb, adcode, area in rows:
        if adcode:
            weights[adcode] += area
    project.district_adcode = weights.most_common(1)[0][0] if weights else None
    shapes = (
        list(shapely.from_wkb(np.asarray([row[0] for row in rows], dtype=object))) if rows else []
    )
    outline = geo.public_outline(shapes)
    project.outline_geojson = json.dumps(outline, separators=(",", ":")) if outline else None
    project.updated_at = utcnow()
    session.add(project)
    session.flush()


# --- the lifecycle -------------------------------------------------------------------------


def uncontracted_parcels(session: Session, project_id: uuid.UUID) -> list[str]:
    """Codes of the project's parcels that are under no active collection contract."""
    covered = (
        select(ContractParcel.parcel_id)
        .join(Contract, col(Contract.id) == col(ContractParcel.contract_id))
        .where(col(Contract.status) == ContractStatus.active)
    )
    return list(
        session.exec(
            select(Parcel.code)
            .join(ProjectParcel, col(ProjectParcel.parcel_id) == col(Parcel.id))
            .where(col(ProjectParcel.project_id) == project_id)
            .where(col(Parcel.id).not_in(covered))
            .order_by(col(Parcel.code))
        ).all()
    )


def collect(session: Session, *, actor: Actor, project_id: uuid.UUID) -> Project:
    """draft → collected: every parcel is under an active collection contract.

    A residents' (RES) project claims no ground: what it pools are residents' reductions,
    quantified event by event, so it is collected without parcels (and may have none).
    """
    require(actor, OrgKind.cooperative, action="Collecting a project", admin=False)
    project = get_project(session, actor=actor, project_id=project_id, lock=True)
    if project.status != ProjectStatus.draft:
        raise _refuse(project, "collect", [ProjectStatus.draft])
    count = len(
        session.exec(
            select(ProjectParcel.parcel_id).where(col(ProjectParcel.project_id) == project.id)
        ).all()
    )
    if count == 0 and project.type != ProjectType.residents:
        raise InvalidTransition(N_("Project {code} has no parcels."), code=project.code)
    missing = uncontracted_parcels(session, project.id)
    if missing:
        raise InvalidTransition(
            N_("Parcels {parcels} of project {code} are under no active collection contract."),
            parcels=", ".join(missing[:20]),
            code=project.code,
            uncontracted=missing[:200],
        )
    _move(
        session,
        project,
        actor=actor,
        action="collected",
        to=ProjectStatus.collected,
        payload={"parcels": count},
    )
    return project


def submit_period(
    session: Session,
    *,
    actor: Actor,
    project_id: uuid.UUID,
    report: dict[str, Any] | str,
    start: date | None = None,
    end: date | None = None,
) -> MonitoringPeriod:
    """collected/issued → submitted: a monitoring period with a report uploaded from outside.

    The report is kept as evidence attached to the period; it is never the basis of issuance
    (:mod:`registry.service.measured`): a period to issue from is submitted from the platform's
    own MRV run (:func:`registry.service.mrv_runs.submit_run`). A residents' (RES) period comes
    only from the pooling job (:func:`submit_pooled_period`).
    """
    project, summary = _open_submission(session, actor=actor, project_id=project_id, report=report)
    if project.type == ProjectType.residents:
        raise PooledOnly(
            N_(
                "Project {code} pools residents' reductions: its periods come only from the"
                " pooling job's report of accepted receipts, never from an upload."
            ),
            code=project.code,
        )
    return _submit(session, actor, project, summary, start, end, measured.UPLOADED)


def submit_measured_period(
    session: Session,
    *,
    actor: Actor,
    project_id: uuid.UUID,
    report: str,
    run_id: uuid.UUID,
    run_parcels: list[dict[str, Any]],
) -> MonitoringPeriod:
    """A period whose report the platform produced (an MRV run over the registered parcels)."""
    project, summary = _open_submission(session, actor=actor, project_id=project_id, report=report)
    if project.type == ProjectType.residents:
        raise PooledOnly(
            N_(
                "Project {code} pools residents' reductions: its periods come only from the"
                " pooling job's report of accepted receipts, never from an upload."
            ),
            code=project.code,
        )
    basis = measured.measured_basis(
        session, project, summary, run_id=run_id, run_parcels=run_parcels
    )
    return _submit(session, actor, project, summary, None, None, basis)


def submit_pooled_period(
    session: Session, *, actor: Actor, project_id: uuid.UUID, report: dict[str, Any]
) -> MonitoringPeriod:
    """The pooling job's report of residents' accepted receipts, as a RES project's period."""
    project, summary = _open_submission(session, actor=actor, project_id=project_id, report=report)
    if project.type != ProjectType.residents:
        raise InvalidReport(
            N_("Only a residents' project takes the pooling job's report."), code=project.code
        )
    return _submit(session, actor, project, summary, None, None, measured.pooled_basis(summary))


def _open_submission(
    session: Session, *, actor: Actor, project_id: uuid.UUID, report: dict[str, Any] | str
) -> tuple[Project, ReportSummary]:
    require(actor, OrgKind.cooperative, action="Submitting a monitoring period", admin=False)
    project = get_project(session, actor=actor, project_id=project_id, lock=True)
    allowed = [ProjectStatus.collected, ProjectStatus.issued]
    if project.status not in allowed:
        raise _refuse(project, "submit", allowed)
    try:
        summary = read_report(report)
    except ReportError as error:
        raise InvalidReport(
            N_("The MRV report is not valid: {reason}."), reason=str(error)
        ) from None
    return project, summary


def _submit(
    session: Session,
    actor: Actor,
    project: Project,
    summary: ReportSummary,
    start: date | None,
    end: date | None,
    basis: measured.Basis,
) -> MonitoringPeriod:
    if summary.methodology_name != project.methodology_name:
        raise InvalidReport(
            N_("The report uses methodology {used}; project {code} is registered for {expected}."),
            used=summary.methodology_name,
            code=project.code,
            expected=project.methodology_name,
        )
    start = start or summary.period_start
    end = end or summary.period_end
    if start is None or end is None:
        raise InvalidReport(N_("The monitoring period needs a start and an end date."))
    if (summary.period_start and summary.period_start != start) or (
        summary.period_end and summary.period_end != end
    ):
        raise InvalidReport(N_("The dates differ from the report's monitoring period."))
    if end < start or start < project.crediting_start or end > project.crediting_end:
        raise InvalidReport(
            N_("The monitoring period must lie within the crediting period {first} to {last}."),
            first=project.crediting_start.isoformat(),
            last=project.crediting_end.isoformat(),
        )
    earlier = periods(session, project.id)
    for other in earlier:
        if other.status in {PeriodStatus.returned, PeriodStatus.withdrawn}:
            continue
        if start <= other.end and other.start <= end:
            raise InvalidReport(
                N_("The monitoring period overlaps period {number} ({first} to {last})."),
                number=other.number,
                first=other.start.isoformat(),
                last=other.end.isoformat(),
            )
    period = MonitoringPeriod(
        project_id=project.id,
        number=(earlier[-1].number + 1) if earlier else 1,
        start=start,
        end=end,
        report_json=summary.text,
        report_sha256=summary.sha256,
        methodology_name=summary.methodology_name,
        methodology_version=summary.methodology_version,
        issuable_t=summary.issuable_t,
        buffer_t=summary.buffer_t,
        basis=basis.kind,
        mrv_run_id=basis.mrv_run_id,
        estimate_t=basis.estimate_t,
        min_buffer_share_bp=basis.min_buffer_share_bp,
        coverage_json=(
            json.dumps(basis.coverage, separators=(",", ":"), sort_keys=True)
            if basis.coverage is not None
            else None
        ),
    )
    session.add(period)
    session.flush()
    _move(
        session,
        project,
        actor=actor,
        action="submitted",
        to=ProjectStatus.submitted,
        payload={
            "period": period.number,
            "report_sha256": period.report_sha256,
            "issuable_t": period.issuable_t,
            "buffer_t": period.buffer_t,
            "basis": str(period.basis),
            "estimate_t": period.estimate_t,
        },
    )
    return period


def _period_for(
    session: Session,
    *,
    actor: Actor,
    period_id: uuid.UUID,
    action: str,
    project_state: ProjectStatus,
    period_state: PeriodStatus,
) -> tuple[MonitoringPeriod, Project]:
    period, project = get_period(session, actor=actor, period_id=period_id)
    locked = _lock(session, project.id)
    assert locked is not None
    session.refresh(period)
    if locked.status != project_state or period.status != period_state:
        raise InvalidTransition(
            N_(
                "Project {code} is {status} and its period {number} is {period_status};"
                " {action} needs {expected}."
            ),
            code=locked.code,
            status=str(locked.status),
            number=period.number,
            period_status=str(period.status),
            action=action,
            expected=f"{project_state!s}/{period_state!s}",
        )
    return period, locked


def certification_message_for(project: Project, period: MonitoringPeriod) -> bytes:
    return certification_message(project.code, period.number, period.report_sha256)


def certify(
    session: Session, *, actor: Actor, period_id: uuid.UUID, signature: str | None = None
) -> MonitoringPeriod:
    """submitted → certified: the verifier organisation signs the report hash (Ed25519)."""
    require(actor, OrgKind.verifier, action="Certifying", admin=False)
    period, project = _period_for(
        session,
        actor=actor,
        period_id=period_id,
        action="certify",
        project_state=ProjectStatus.submitted,
        period_state=PeriodStatus.submitted,
    )
    assert actor.organisation_id is not None
    signed, key_id = keys.sign_or_verify(
        session,
        organisation_id=actor.organisation_id,
        message=certification_message_for(project, period),
        signature=signature,
    )
    period.status = PeriodStatus.certified
    period.verifier_id = actor.organisation_id
    period.certified_at = utcnow()
    period.certification_signature = signed
    period.certification_key_id = key_id
    session.add(period)
    _move(
        session,
        project,
        actor=actor,
        action="certified",
        to=ProjectStatus.certified,
        payload={
            "period": period.number,
            "report_sha256": period.report_sha256,
            "key_id": key_id,
            "signature": signed,
        },
    )
    return period


def return_period(
    session: Session,
    *,
    actor: Actor,
    period_id: uuid.UUID,
    comments: str,
    to: ProjectStatus = ProjectStatus.collected,
) -> MonitoringPeriod:
    """submitted → collected (or draft): the verifier sends the report back with comments."""
    require(actor, OrgKind.verifier, action="Returning a report", admin=False)
    if to not in {ProjectStatus.collected, ProjectStatus.draft}:
        raise InvalidInput(N_("A returned project goes back to draft or collected."))
    if not comments.strip():
        raise InvalidInput(
            N_("Say what must change: comments are required."),
            errors=[{"field": "comments", "message": "required"}],
        )
    period, project = _period_for(
        session,
        actor=actor,
        period_id=period_id,
        action="return",
        project_state=ProjectStatus.submitted,
        period_state=PeriodStatus.submitted,
    )
    period.status = PeriodStatus.returned
    period.comments = comments.strip()
    period.verifier_id = actor.organisation_id
    session.add(period)
    earlier_issued = any(p.status == PeriodStatus.issued for p in periods(session, project.id))
    target = ProjectStatus.issued if earlier_issued and to == ProjectStatus.collected else to
    _move(
        session,
        project,
        actor=actor,
        action="returned",
        to=target,
        payload={"period": period.number, "comments": period.comments},
    )
    return period


def file_period(session: Session, *, actor: Actor, period_id: uuid.UUID) -> MonitoringPeriod:
    """certified → filed: the authority registers the certified quantity (备案)."""
    require(actor, OrgKind.authority, action="Filing", admin=False)
    period, project = _period_for(
        session,
        actor=actor,
        period_id=period_id,
        action="file",
        project_state=ProjectStatus.certified,
        period_state=PeriodStatus.certified,
    )
    if not verify_certification(session, project, period):
        raise InvalidTransition(
            N_("The certification signature of period {number} does not verify."),
            number=period.number,
        )
    period.status = PeriodStatus.filed
    period.authority_id = actor.organisation_id
    period.filed_at = utcnow()
    session.add(period)
    _move(
        session,
        project,
        actor=actor,
        action="filed",
        to=ProjectStatus.filed,
        payload={"period": period.number},
    )
    return period


def verify_certification(session: Session, project: Project, period: MonitoringPeriod) -> bool:
    """Anyone can check: the stored signature over the report hash, with the verifier's key."""
    if not period.certification_signature or not period.certification_key_id:
        return False
    return keys.verify(
        session,
        key_id=period.certification_key_id,
        message=certification_message_for(project, period),
        signature=period.certification_signature,
        use=keys.USE_MRV,
    )


def suspend(session: Session, *, actor: Actor, project_id: uuid.UUID, reason: str) -> Project:
    require(actor, OrgKind.authority, action="Suspending a project")
    _need_reason(reason)
    project = get_project(session, actor=actor, project_id=project_id, lock=True)
    if project.status not in ACTIVE_STATES:
        raise _refuse(project, "suspend", ACTIVE_STATES)
    project.status_before_suspension = project.status
    project.status_reason = reason.strip()
    _move(
        session,
        project,
        actor=actor,
        action="suspended",
        to=ProjectStatus.suspended,
        payload={"reason": project.status_reason},
    )
    return project


def resume(session: Session, *, actor: Actor, project_id: uuid.UUID, reason: str = "") -> Project:
    require(actor, OrgKind.authority, action="Resuming a project")
    project = get_project(session, actor=actor, project_id=project_id, lock=True)
    if project.status != ProjectStatus.suspended or project.status_before_suspension is None:
        raise _refuse(project, "resume", [ProjectStatus.suspended])
    target = project.status_before_suspension
    project.status_before_suspension = None
    project.status_reason = reason.strip() or None
    _move(
        session,
        project,
        actor=actor,
        action="resumed",
        to=target,
        payload={"reason": reason.strip()},
    )
    return project


def terminate(session: Session, *, actor: Actor, project_id: uuid.UUID, reason: str) -> Project:
    """Any state but terminated → terminated; pending periods end, its ground claims stay."""
    require(actor, OrgKind.authority, action="Terminating a project")
    _need_reason(reason)
    project = get_project(session, actor=actor, project_id=project_id, lock=True)
    if project.status == ProjectStatus.terminated:
        raise _refuse(project, "terminate", [*ACTIVE_STATES, ProjectStatus.suspended])
    for period in periods(session, project.id):
        if period.status in {PeriodStatus.submitted, PeriodStatus.certified, PeriodStatus.filed}:
            period.status = PeriodStatus.withdrawn
            session.add(period)
    project.status_before_suspension = None
    project.status_reason = reason.strip()
    _move(
        session,
        project,
        actor=actor,
        action="terminated",
        to=ProjectStatus.terminated,
        payload={"reason": project.status_reason},
    )
    return project


def _need_reason(reason: str) -> None:
    if not reason or not reason.strip():
        raise InvalidInput(
            N_("A reason is required."), errors=[{"field": "reason", "message": "required"}]
        )
