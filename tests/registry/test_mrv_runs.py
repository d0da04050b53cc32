"""MRV runs in the database (registry.service.mrv_runs), on SQLite and PostgreSQL: who sees a run,
how the background work's writes advance it (and never revive a finished one), stall detection
from its heartbeat, submission once, removal after a week."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session, col

from registry.errors import InvalidReport, InvalidTransition, RegistryNotFound, RoleRefused
from registry.models import MrvRun, MrvRunState, ProjectStatus
from registry.service import mrv_runs, projects
from registry.service.actors import Actor
from tanhui.crypto import sha256_hex
from tanhui.db import retrying, utcnow
from tanhui.models import OrgKind, Role
from tests.registry import helpers

START, END = date(2022, 1, 1), date(2024, 12, 31)


def _start(session: Session, coop: Actor, project_id: uuid.UUID) -> MrvRun:
    return mrv_runs.start_run(
        session,
        actor=coop,
        project_id=project_id,
        period_start=START,
        period_end=END,
        layers=["red", "nir"],
    )


def _age(engine: Engine, run_id: uuid.UUID, by: timedelta) -> None:
    with Session(engine) as other:
        other.execute(
            update(MrvRun)
            .where(col(MrvRun.id) == run_id)
            .values(updated_at=utcnow() - by, created_at=utcnow() - by)
        )
        other.commit()


def test_a_run_from_queued_to_submitted(session: Session, engine: Engine) -> None:
    roles = helpers.Roles.make(session)
    project = helpers.project(session, roles, status=ProjectStatus.collected)
    run = _start(session, roles.coop, project.id)
    assert run.state == MrvRunState.queued and run.methodology == "bamboo-rate@1.0"
    assert mrv_runs.layer_names(run) == ["nir", "red"]
    session.commit()
    run_id = run.id

    # The background work writes in transactions of its own.
    assert retrying(engine, lambda s: mrv_runs.mark_running(s, run_id))
    assert retrying(engine, lambda s: mrv_runs.record_progress(s, run_id, 3, 12))
    seen = mrv_runs.get_run(session, actor=roles.coop, run_id=run_id)
    session.refresh(seen)
    assert (seen.state, seen.done, seen.total) == (MrvRunState.running, 3, 12)
    codes = [parcel.code for parcel in projects.project_parcels(session, project.id)]
    session.rollback()  # release SQLite's lock before the background work writes
    text = json.dumps(helpers.report(issuable=800, buffer=100, parcels=codes), sort_keys=True)
    assert retrying(engine, lambda s: mrv_runs.finish(s, run_id, text))
    # a late progress write or failure does not bring a finished run back
    assert not retrying(engine, lambda s: mrv_runs.record_progress(s, run_id, 4, 12))
    assert not retrying(engine, lambda s: mrv_runs.fail(s, run_id, code="x", message="late"))
    session.expire_all()
    done = mrv_runs.get_run(session, actor=roles.coop, run_id=run_id, with_report=True)
    assert done.state == MrvRunState.done and done.report_json == text
    assert done.report_sha256 == sha256_hex(text.encode()) and done.finished_at is not None
    assert (done.done, done.total) == (3, 12)

    period = mrv_runs.submit_run(session, actor=roles.coop, run_id=run_id)
    assert period.report_sha256 == done.report_sha256 and period.issuable_t == 800
    assert done.state == MrvRunState.submitted and done.period_id == period.id
    assert projects.get_project(session, actor=roles.coop, project_id=project.id).status == (
        ProjectStatus.submitted
    )
    session.commit()
    with pytest.raises(InvalidReport):  # a report is submitted once
        mrv_runs.submit_run(session, actor=roles.coop, run_id=run_id)
    session.rollback()


def test_who_sees_and_acts_on_a_run(session: Session) -> None:
    roles = helpers.Roles.make(session)
    project = helpers.project(session, roles, status=ProjectStatus.collected)
    draft = helpers.project(session, roles)
    first = _start(session, roles.coop, project.id)
    second = _start(session, roles.coop, project.id)
    other_coop = helpers.actor(session, OrgKind.cooperative)
    viewer = helpers.colleague(roles.coop, Role.viewer)
    session.commit()

    listed = mrv_runs.runs_of_project(session, actor=viewer, project_id=project.id)
    assert [run.id for run in listed] == [second.id, first.id]  # newest first
    assert mrv_runs.get_run(session, actor=viewer, run_id=first.id).id == first.id
    with pytest.raises(RegistryNotFound):
        mrv_runs.get_run(session, actor=other_coop, run_id=first.id)
    with pytest.raises(RegistryNotFound):
        mrv_runs.runs_of_project(session, actor=other_coop, project_id=project.id)
    with pytest.raises(RegistryNotFound):
        mrv_runs.get_run(session, actor=roles.coop, run_id=uuid.uuid4())
    with pytest.raises(RoleRefused):
        _start(session, viewer, project.id)
    with pytest.raises(RoleRefused):
        _start(session, roles.verifier, project.id)
    with pytest.raises(RegistryNotFound):
        _start(session, other_coop, project.id)
    with pytest.raises(InvalidTransition):  # a draft project is not measured
        _start(session, roles.coop, draft.id)
    with pytest.raises(RegistryNotFound):
        mrv_runs.submit_run(session, actor=other_coop, run_id=first.id)
    with pytest.raises(InvalidReport):  # queued: nothing to submit yet
        mrv_runs.submit_run(session, actor=roles.coop, run_id=first.id)
    session.rollback()


def test_a_failed_run_keeps_its_error(session: Session, engine: Engine) -> None:
    roles = helpers.Roles.make(session)
    project = helpers.project(session, roles, status=ProjectStatus.collected)
    run = _start(session, roles.coop, project.id)
    session.commit()
    run_id = run.id
    assert retrying(
        engine,
        lambda s: mrv_runs.fail(
            s, run_id, code="mrv/unreadable", message="Cannot read {input}", params={"input": 1}
        ),
    )
    session.expire_all()
    failed = mrv_runs.get_run(session, actor=roles.coop, run_id=run_id)
    assert failed.state == MrvRunState.failed and failed.error_code == "mrv/unreadable"
    assert failed.error_message == "Cannot read {input}"
    assert mrv_runs.error_params(failed) == {"input": "1"}
    assert not mrv_runs.is_stalled(failed, now=utcnow() + timedelta(days=1))
    with pytest.raises(InvalidReport):
        mrv_runs.submit_run(session, actor=roles.coop, run_id=run_id)
    session.rollback()


def test_a_silent_run_is_stalled_and_a_week_old_one_removed(
    session: Session, engine: Engine
) -> None:
    roles = helpers.Roles.make(session)
    project = helpers.project(session, roles, status=ProjectStatus.collected)
    silent = _start(session, roles.coop, project.id)
    old = _start(session, roles.coop, project.id)
    fresh = _start(session, roles.coop, project.id)
    session.commit()
    ids = silent.id, old.id, fresh.id
    _age(engine, ids[0], mrv_runs.STALLED_AFTER + timedelta(seconds=5))
    _age(engine, ids[1], mrv_runs.KEEP_RUNS + timedelta(minutes=1))
    session.expire_all()
    seen = {
        run.id: run
        for run in mrv_runs.runs_of_project(session, actor=roles.coop, project_id=project.id)
    }
    assert mrv_runs.is_stalled(seen[ids[0]]) and not mrv_runs.is_stalled(seen[ids[2]])
    session.rollback()
    # a heartbeat brings a waiting run back to life; the week-old one goes
    assert retrying(engine, lambda s: mrv_runs.record_progress(s, ids[0]))
    assert retrying(engine, mrv_runs.remove_old_runs) == 1
    left = mrv_runs.runs_of_project(session, actor=roles.coop, project_id=project.id)
    assert {run.id for run in left} == {ids[0], ids[2]}
    assert not any(mrv_runs.is_stalled(run) for run in left)
    session.rollback()


def test_two_submissions_at_once_make_one_period(session: Session, engine: Engine) -> None:
    """Two web processes submitting the same run: the run's row lock lets one through."""
    roles = helpers.Roles.make(session)
    project = helpers.project(session, roles, status=ProjectStatus.collected)
    run = _start(session, roles.coop, project.id)
    session.commit()
    run_id = run.id
    codes = [parcel.code for parcel in projects.project_parcels(session, project.id)]
    session.rollback()
    text = json.dumps(helpers.report(parcels=codes), sort_keys=True)
    assert retrying(engine, lambda s: mrv_runs.finish(s, run_id, text))
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def submit() -> None:
        barrier.wait()
        try:
            retrying(engine, lambda s: mrv_runs.submit_run(s, actor=roles.coop, run_id=run_id))
            outcomes.append("submitted")
        except InvalidReport:
            outcomes.append("refused")

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["refused", "submitted"]
    assert len(projects.periods(session, project.id)) == 1
    session.rollback()
