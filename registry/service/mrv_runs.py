"""MRV runs started from the cooperative portal: queued, running, done or failed, submitted.

A web process estimates in the background and records the run's state here in short
transactions of their own (:func:`mark_running`, :func:`record_progress`, :func:`finish`,
:func:`fail`), so any web process on any machine shows the same runs; pages read them with
:func:`get_run` and :func:`runs_of_project`, which check the caller's organisation like every
registry read. :func:`submit_run` turns a finished run's report into a monitoring period through
:func:`registry.service.projects.submit_period`, in the same transaction that marks the run
submitted, so a report is submitted once.

The writes of the background work are conditional (``WHERE state IN (queued, running)``): a run
already finished, submitted or removed is never brought back. ``updated_at`` is the run's
heartbeat; a queued or running run silent for :data:`STALLED_AFTER` died with its process
(:func:`is_stalled`). Runs are removed a week after their last change (:func:`remove_old_runs`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from registry.errors import InvalidReport, InvalidTransition, RegistryNotFound
from registry.models import MonitoringPeriod, MrvRun, MrvRunState, ProjectStatus
from registry.service import measured, projects
from registry.service.actors import Actor, ensure_own, require
from tanhui.crypto import sha256_hex
from tanhui.db import utcnow
from tanhui.i18n import N_
from tanhui.models import OrgKind, Role

STALLED_AFTER = timedelta(minutes=15)  # a queued or running run silent this long has died
KEEP_RUNS = timedelta(days=7)  # runs are removed a week after their last change
MAX_LISTED = 10  # runs listed on a project's page
RUNNABLE = (ProjectStatus.collected, ProjectStatus.issued)
ACTIVE = (MrvRunState.queued, MrvRunState.running)
AREA_CRS = "EPSG:4549"  # CGCS2000 3-degree Gauss-Kruger CM 120E: the registry's own measure
CANCELLED = "mrv/cancelled"  # the error code of a run stopped by its cooperative
OVER_BUDGET = "mrv/time-budget"  # the error code of a run stopped by the time budget


# --- starting and reading (the caller's organisation is checked) ---------------------------


def start_run(
    session: Session,
    *,
    actor: Actor,
    project_id: uuid.UUID,
    period_start: date,
    period_end: date,
    layers: Iterable[str],
    run_id: uuid.UUID | None = None,
) -> MrvRun:
    """A queued run of the project's methodology over ``layers`` (the caller then runs it).

    ``run_id`` lets the caller store the run's inputs under its id before the row exists.
    """
    require(actor, OrgKind.cooperative, action="Running MRV", admin=False)
    project = projects.get_project(session, actor=actor, project_id=project_id)
    if project.status not in RUNNABLE:
        raise InvalidTransition(
            N_("Project {code} is {status}; an MRV run needs a collected or issued project."),
            code=project.code,
            status=str(project.status),
        )
    if period_end <= period_start:
        raise InvalidReport(N_("The monitoring period must end after it starts."))
    now = utcnow()
    run = MrvRun(
        organisation_id=project.cooperative_id,
        project_id=project.id,
        methodology=f"{project.methodology_name}@{project.methodology_version}",
        period_start=period_start,
        period_end=period_end,
        layers=",".join(sorted(layers)),
        parcels_json=json.dumps(measured.registered_parcels(session, project)),
        created_at=now,
        updated_at=now,
    )
    if run_id is not None:
        run.id = run_id
    session.add(run)
    session.flush()
    return run


def parcels_frame(session: Session, project_id: uuid.UUID) -> Any:
    """The project's parcels as registered (code as id, registered outline in WGS84), the
    frame every platform run estimates over."""
    import geopandas
    from shapely.geometry import shape

    included = projects.project_parcels(session, project_id)
    return geopandas.GeoDataFrame(
        {"id": [parcel.code for parcel in included]},
        geometry=[shape(json.loads(parcel.geometry_geojson)) for parcel in included],
        crs="EPSG:4326",
    )


def run_params(run: MrvRun, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The parameters of a platform run: the run's own period and the registry's area CRS
    (EPSG:4549, Huzhou's CGCS2000 zone), whatever else ``overrides`` sets."""
    params: dict[str, Any] = dict(overrides or {})
    params["monitoring_period"] = {
        "start": run.period_start.isoformat(),
        "end": run.period_end.isoformat(),
    }
    params["area"] = {"crs": AREA_CRS}
    return params


def measure(
    session: Session,
    *,
    actor: Actor,
    project_id: uuid.UUID,
    period_start: date,
    period_end: date,
    rasters: Mapping[str, str],
    classes: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> MrvRun:
    """Run the project's methodology now, in this process, over its registered parcels.

    For small inputs (the API, the demo): the cooperative portal runs larger ones in the
    background (frontend.mrv_jobs). An MRV refusal (bounds, dates, coverage) is raised and
    nothing is written.
    """
    from mrv.service import estimate

    run = start_run(
        session,
        actor=actor,
        project_id=project_id,
        period_start=period_start,
        period_end=period_end,
        layers=rasters,
    )
    report = estimate(
        parcels_frame(session, project_id),
        dict(rasters),
        run.methodology,
        run_params(run, overrides),
        id_column="id",
        classes=classes,
    )
    finish(session, run.id, report.to_json())
    session.refresh(run)
    return run


def get_run(
    session: Session, *, actor: Actor, run_id: uuid.UUID, with_report: bool = False
) -> MrvRun:
    """A run of the caller's organisation (another organisation's answers 404).

    The report (up to megabytes) is loaded only ``with_report``.
    """
    query = select(MrvRun).where(col(MrvRun.id) == run_id)
    if not with_report:
        query = query.options(defer(MrvRun.report_json))  # type: ignore[arg-type]
    run = session.exec(query).one_or_none()
    if run is None:
        raise RegistryNotFound(N_("No {what} {id}."), what="MRV run", id=run_id.hex)
    ensure_own(actor, run.organisation_id, what="MRV run", object_id=run_id.hex)
    return run


def runs_of_project(
    session: Session, *, actor: Actor, project_id: uuid.UUID, limit: int = MAX_LISTED
) -> list[MrvRun]:
    """The project's recent runs, newest first, without their reports."""
    project = projects.get_project(session, actor=actor, project_id=project_id)
    ensure_own(actor, project.cooperative_id, what="project", object_id=project_id)
    return list(
        session.exec(
            select(MrvRun)
            .options(defer(MrvRun.report_json))  # type: ignore[arg-type]
            .where(col(MrvRun.project_id) == project.id)
            .order_by(col(MrvRun.created_at).desc(), col(MrvRun.id).desc())
            .limit(limit)
        ).all()
    )


def submit_run(session: Session, *, actor: Actor, run_id: uuid.UUID) -> MonitoringPeriod:
    """Submit a done run's report as the project's next monitoring period, once."""
    require(
        actor,
        OrgKind.cooperative,
        minimum=Role.member,
        action="Submitting a monitoring period",
        admin=False,
    )
    run = session.exec(
        select(MrvRun)
        .where(col(MrvRun.id) == run_id)
        .with_for_update()
        .execution_options(populate_existing=True)  # the background writes bypass the ORM
    ).one_or_none()
    if run is None:
        raise RegistryNotFound(N_("No {what} {id}."), what="MRV run", id=run_id.hex)
    ensure_own(actor, run.organisation_id, what="MRV run", object_id=run_id.hex)
    if run.state != MrvRunState.done or run.report_json is None:
        raise InvalidReport(N_("This MRV run has no report to submit."))
    period = projects.submit_measured_period(
        session,
        actor=actor,
        project_id=run.project_id,
        report=run.report_json,
        run_id=run.id,
        run_parcels=json.loads(run.parcels_json or "[]"),
    )
    run.state = MrvRunState.submitted
    run.period_id = period.id
    run.updated_at = utcnow()
    session.add(run)
    session.flush()
    return period


def cancel_run(session: Session, *, actor: Actor, run_id: uuid.UUID) -> MrvRun:
    """Stop a queued or running run: it fails as cancelled; its background work sees the run
    is no longer active at its next chunk (or before it starts) and stops."""
    require(
        actor, OrgKind.cooperative, minimum=Role.member, action="Cancelling an MRV run", admin=False
    )
    run = session.exec(
        select(MrvRun).where(col(MrvRun.id) == run_id).with_for_update()
    ).one_or_none()
    if run is None:
        raise RegistryNotFound(N_("No {what} {id}."), what="MRV run", id=run_id.hex)
    ensure_own(actor, run.organisation_id, what="MRV run", object_id=run_id.hex)
    if run.state not in ACTIVE:
        raise InvalidTransition(N_("This MRV run is not running; there is nothing to cancel."))
    fail(session, run.id, code=CANCELLED, message=N_("The run was cancelled."))
    session.refresh(run)
    return run


# --- the background work's writes (system: no caller to check) -----------------------------


def _advance(session: Session, run_id: uuid.UUID, **values: Any) -> bool:
    """Update a queued or running run; False when it is finished, submitted or gone."""
    result = session.execute(
        update(MrvRun)
        .where(col(MrvRun.id) == run_id, col(MrvRun.state).in_(ACTIVE))
        .values(updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def mark_running(session: Session, run_id: uuid.UUID) -> bool:
    return _advance(session, run_id, state=MrvRunState.running)


def record_progress(
    session: Session, run_id: uuid.UUID, done: int | None = None, total: int | None = None
) -> bool:
    """Raster chunks measured so far; without numbers, only the heartbeat."""
    values: dict[str, Any] = {}
    if done is not None and total is not None:
        values = {"done": done, "total": total}
    return _advance(session, run_id, **values)


def finish(session: Session, run_id: uuid.UUID, report_json: str) -> bool:
    """Store the report (MRV's canonical JSON text) and its SHA-256; the run is done."""
    return _advance(
        session,
        run_id,
        state=MrvRunState.done,
        report_json=report_json,
        report_sha256=sha256_hex(report_json.encode("utf-8")),
        finished_at=utcnow(),
    )


def fail(
    session: Session,
    run_id: uuid.UUID,
    *,
    code: str,
    message: str,
    params: dict[str, Any] | None = None,
) -> bool:
    """The run failed: an error code, its English message template and the template's params."""
    return _advance(
        session,
        run_id,
        state=MrvRunState.failed,
        error_code=code[:100],
        error_message=message,
        error_params_json=json.dumps(
            {str(key): str(value) for key, value in (params or {}).items()}, ensure_ascii=False
        ),
        finished_at=utcnow(),
    )


def remove_old_runs(session: Session, *, now: datetime | None = None) -> int:
    """Remove runs unchanged for a week (a submitted report lives on in its period)."""
    cutoff = (now or utcnow()) - KEEP_RUNS
    result = session.execute(
        delete(MrvRun)
        .where(col(MrvRun.updated_at) < cutoff)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# --- presenting ----------------------------------------------------------------------------


def is_stalled(run: MrvRun, *, now: datetime | None = None) -> bool:
    """A queued or running run whose heartbeat stopped: its process died (or lost the database)."""
    return run.state in ACTIVE and (now or utcnow()) - run.updated_at > STALLED_AFTER


def error_params(run: MrvRun) -> dict[str, str]:
    if not run.error_params_json:
        return {}
    loaded = json.loads(run.error_params_json)
    return {str(key): str(value) for key, value in loaded.items()}


def layer_names(run: MrvRun) -> list[str]:
    return [name for name in run.layers.split(",") if name]
