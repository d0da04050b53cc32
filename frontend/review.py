"""What the verifier and the authority see of a monitoring period: the project, the report with
its map, the message the verifier signs and whether the stored signature verifies."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from frontend import reports
from registry.models import MonitoringPeriod, PeriodStatus, Project, ProjectStatus
from registry.service import keys, measured, projects
from registry.service.actors import Actor
from registry.service.transfers import organisation_name


@dataclass(frozen=True)
class QueueItem:
    project: Project
    period: MonitoringPeriod
    cooperative: str | None


def queue(
    session: Session,
    actor: Actor,
    *,
    project_states: tuple[ProjectStatus, ...],
    period_states: tuple[PeriodStatus, ...],
) -> list[QueueItem]:
    """Periods in ``period_states`` of projects in ``project_states``, oldest submission first.

    The registry has no query for periods by state, so this walks the projects the actor may see
    (verifiers and the authority see all) and reads the periods of those in a matching state.
    """
    items = []
    for project in projects.list_projects(session, actor=actor):
        if project.status not in project_states:
            continue
        cooperative = organisation_name(session, f"org:{project.cooperative_id}")
        for period in projects.periods(session, project.id):
            if period.status in period_states:
                items.append(QueueItem(project, period, cooperative))
    return sorted(items, key=lambda item: item.period.submitted_at)


@dataclass(frozen=True)
class PeriodReview:
    project: Project
    period: MonitoringPeriod
    cooperative: str | None
    verifier: str | None
    report: reports.ReportView
    message: str  # the canonical JSON the verifier signs
    signature_ok: bool
    parcel_count: int
    coverage: list[dict[str, Any]]  # the platform run's parcels (empty for an uploaded report)


def period_review(
    session: Session, actor: Actor, period_id: uuid.UUID, locale: str
) -> PeriodReview:
    period, project = projects.get_period(session, actor=actor, period_id=period_id)
    included = projects.project_parcels(session, project.id)
    return PeriodReview(
        project=project,
        period=period,
        cooperative=organisation_name(session, f"org:{project.cooperative_id}"),
        verifier=organisation_name(session, f"org:{period.verifier_id}")
        if period.verifier_id
        else None,
        report=reports.view(period.report_json, reports.outlines_of(included), locale),
        message=projects.certification_message_for(project, period).decode("utf-8"),
        signature_ok=projects.verify_certification(session, project, period),
        parcel_count=len(included),
        coverage=measured.coverage_of(period),
    )


def signs_with_own_key(session: Session, organisation_id: uuid.UUID | None) -> bool:
    """Whether the organisation registered its own key (then it must send a signature)."""
    if organisation_id is None:
        return False
    current = keys.active_key(session, organisation_id)
    return current is not None and current.private_sealed is None
