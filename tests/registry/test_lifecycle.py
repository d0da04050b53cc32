"""The project lifecycle over HTTP: every transition is allowed for its role in its states, and
refused with problem+json for every other role (401/403/404) and every other state (409)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from registry.errors import InvalidTransition
from registry.models import ProjectStatus, ProjectType
from registry.service import projects
from tests.registry import helpers
from tests.registry.conftest import People, Person

PROBLEM = "application/problem+json"
SECOND_PERIOD = helpers.report(start="2025-01-01", end="2027-12-31")


@dataclass
class Built:
    project_id: uuid.UUID
    period_id: uuid.UUID | None


def build(session: Session, people: People, state: str) -> Built:
    """A project in ``state`` (``returned_draft``/``returned_collected``: its period was
    returned), made through the services and committed."""
    roles = people.roles
    base = {
        "returned_draft": ProjectStatus.submitted,
        "returned_collected": ProjectStatus.submitted,
        "suspended": ProjectStatus.submitted,
        "terminated": ProjectStatus.submitted,
    }.get(state, ProjectStatus(state) if state in ProjectStatus.__members__ else None)
    assert base is not None, state
    project = helpers.project(session, roles, status=base)
    period = projects.periods(session, project.id)
    period_id = period[-1].id if period else None
    if state.startswith("returned_"):
        assert period_id is not None
        projects.return_period(
            session,
            actor=roles.verifier,
            period_id=period_id,
            comments="补充样地数据",
            to=ProjectStatus(state.removeprefix("returned_")),
        )
    elif state == "suspended":
        projects.suspend(session, actor=roles.authority, project_id=project.id, reason="核查")
    elif state == "terminated":
        projects.terminate(session, actor=roles.authority, project_id=project.id, reason="撤销")
    session.commit()
    return Built(project.id, period_id)


Call = Callable[[TestClient, Built, dict[str, str]], httpx.Response]
REGISTRY = "/api/v1/registry"


@dataclass(frozen=True)
class Transition:
    name: str
    states: tuple[str, ...]  # where it may be tried (a period-level one needs a period)
    allowed_from: frozenset[str]
    allowed: frozenset[str]  # people
    call: Call
    to: ProjectStatus | None  # None: back to the state before (resume)


ALL_STATES = (
    "draft",
    "collected",
    "submitted",
    "certified",
    "filed",
    "issued",
    "suspended",
    "terminated",
    "returned_draft",
    "returned_collected",
)
PERIOD_STATES = tuple(s for s in ALL_STATES if s not in {"draft", "collected"})
ACTIVE = frozenset(s for s in ALL_STATES if s not in {"suspended", "terminated"})


def _project_post(path: str, body: dict[str, object] | None = None) -> Call:
    def call(client: TestClient, built: Built, headers: dict[str, str]) -> httpx.Response:
        return client.post(
            f"{REGISTRY}/projects/{built.project_id}/{path}", json=body, headers=headers
        )

    return call


def _period_post(path: str, body: dict[str, object]) -> Call:
    def call(client: TestClient, built: Built, headers: dict[str, str]) -> httpx.Response:
        assert built.period_id is not None
        return client.post(
            f"{REGISTRY}/periods/{built.period_id}/{path}", json=body, headers=headers
        )

    return call


TRANSITIONS = [
    Transition(
        "collect",
        ALL_STATES,
        frozenset({"draft", "returned_draft"}),
        frozenset({"coop"}),
        _project_post("collect"),
        ProjectStatus.collected,
    ),
    Transition(
        "submit",
        ALL_STATES,
        frozenset({"collected", "returned_collected", "issued"}),
        frozenset({"coop"}),
        _project_post("periods", {"report": SECOND_PERIOD}),
        ProjectStatus.submitted,
    ),
    Transition(
        "certify",
        PERIOD_STATES,
        frozenset({"submitted"}),
        frozenset({"verifier"}),
        _period_post("certify", {}),
        ProjectStatus.certified,
    ),
    Transition(
        "return",
        PERIOD_STATES,
        frozenset({"submitted"}),
        frozenset({"verifier"}),
        _period_post("return", {"comments": "面积需复核"}),
        ProjectStatus.collected,
    ),
    Transition(
        "file",
        PERIOD_STATES,
        frozenset({"certified"}),
        frozenset({"authority"}),
        _period_post("file", {}),
        ProjectStatus.filed,
    ),
    Transition(
        "issue",
        PERIOD_STATES,
        frozenset({"filed"}),
        frozenset({"authority"}),
        _period_post("issue", {}),
        ProjectStatus.issued,
    ),
    Transition(
        "suspend",
        ALL_STATES,
        ACTIVE,
        frozenset({"authority", "admin"}),
        _project_post("suspend", {"reason": "林权争议"}),
        ProjectStatus.suspended,
    ),
    Transition(
        "resume",
        ALL_STATES,
        frozenset({"suspended"}),
        frozenset({"authority", "admin"}),
        _project_post("resume", {"reason": "争议解决"}),
        None,
    ),
    Transition(
        "terminate",
        ALL_STATES,
        frozenset(ALL_STATES) - {"terminated"},
        frozenset({"authority", "admin"}),
        _project_post("terminate", {"reason": "退出"}),
        ProjectStatus.terminated,
    ),
]


def _status(client: TestClient, admin: Person, built: Built) -> str:
    answer = client.get(f"{REGISTRY}/projects/{built.project_id}", headers=admin.headers)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["status"])


def test_only_the_right_role_may_take_each_step(
    client: TestClient, session: Session, people: People
) -> None:
    everyone = people.everyone()
    for transition in TRANSITIONS:
        start = sorted(transition.allowed_from)[0]
        built = build(session, people, start)
        before = _status(client, people.admin, built)
        for name, who in everyone.items():
            if name in transition.allowed:
                continue
            answer = transition.call(client, built, who.headers)
            assert answer.status_code in {403, 404}, (transition.name, name, answer.text)
            assert answer.headers["content-type"].startswith(PROBLEM)
        anonymous = transition.call(client, built, {})
        assert anonymous.status_code == 401, (transition.name, anonymous.text)
        assert anonymous.headers["content-type"].startswith(PROBLEM)
        assert _status(client, people.admin, built) == before, transition.name
        for index, name in enumerate(sorted(transition.allowed)):
            target = built if index == 0 else build(session, people, start)
            answer = transition.call(client, target, everyone[name].headers)
            assert answer.status_code in {200, 201}, (transition.name, name, answer.text)
            expected = transition.to.value if transition.to else "submitted"
            assert _status(client, people.admin, target) == expected, (transition.name, name)


def test_each_step_is_refused_in_every_other_state(
    client: TestClient, session: Session, people: People
) -> None:
    tried = 0
    for state in ALL_STATES:
        built = build(session, people, state)  # a refused step changes nothing: one per state
        before = _status(client, people.admin, built)
        for transition in TRANSITIONS:
            if state in transition.allowed_from or state not in transition.states:
                continue
            who = people.everyone()[sorted(transition.allowed)[0]]
            answer = transition.call(client, built, who.headers)
            assert answer.status_code == 409, (transition.name, state, answer.text)
            assert answer.headers["content-type"].startswith(PROBLEM)
            assert answer.json()["type"] == "/problems/registry/invalid-transition"
            tried += 1
        assert _status(client, people.admin, built) == before, state
    assert tried == 55  # every (transition, state) pair outside the allowed ones


def test_every_transition_is_audited(session: Session, people: People) -> None:
    from sqlmodel import col, select

    from tanhui.models import AuditRecord

    project = helpers.project(session, people.roles, status=ProjectStatus.issued)
    actions = session.exec(
        select(AuditRecord.action)
        .where(col(AuditRecord.subject_id) == str(project.id))
        .order_by(col(AuditRecord.seq))
    ).all()
    assert [a for a in actions if a.startswith("project.")] == [
        "project.created",
        "project.parcels_added",
        "project.collected",
        "project.submitted",
        "project.certified",
        "project.filed",
        "project.issued",
    ]


def test_only_a_residents_project_is_collected_without_parcels(
    session: Session, people: People
) -> None:
    coop = people.roles.coop
    assert coop.organisation_id is not None
    made = {}
    for project_type, code, methodology, years in (
        (ProjectType.bamboo, "BAREBAM", "bamboo-rate", 30),
        (ProjectType.residents, "RES0099", "tanhui-residents-pool", 10),
    ):
        made[project_type] = projects.create_project(
            session,
            actor=coop,
            cooperative_id=coop.organisation_id,
            code=code,
            name=code,
            type=project_type,
            methodology_name=methodology,
            methodology_version="1.0",
            crediting_start=date(2026, 1, 1),
            crediting_end=date(2025 + years, 12, 31),
        )
    with pytest.raises(InvalidTransition):
        projects.collect(session, actor=coop, project_id=made[ProjectType.bamboo].id)
    collected = projects.collect(session, actor=coop, project_id=made[ProjectType.residents].id)
    assert collected.status == ProjectStatus.collected
