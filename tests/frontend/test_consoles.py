"""The verifier and authority consoles: queue, review, certify or return, file, issue, losses,
suspension and termination."""

from __future__ import annotations

import base64
import hashlib
from datetime import date

from fastapi.testclient import TestClient
from sqlmodel import Session

from registry.models import LossCause, PeriodStatus, ProjectStatus
from registry.service import issuance, keys, projects, reversals
from tanhui.crypto import SigningKey
from tests.frontend.conftest import Faces, as_
from tests.registry import helpers

EN = {"Accept": "text/html", "Accept-Language": "en"}


def test_verifier_reviews_returns_and_certifies(
    client: TestClient, session: Session, faces: Faces
) -> None:
    first = helpers.project(session, faces.roles, status=ProjectStatus.submitted)
    second = helpers.project(session, faces.roles, status=ProjectStatus.submitted)
    first_period = projects.periods(session, first.id)[0].id
    second_period = projects.periods(session, second.id)[0].id
    plot = projects.project_parcels(session, first.id)[0]
    session.commit()
    csrf = as_(client, faces.verifier)
    queue = client.get("/verifier", headers=EN)
    assert f"/verifier/periods/{first_period}" in queue.text
    assert f"/verifier/periods/{second_period}" in queue.text
    review = client.get(f"/verifier/periods/{first_period}", headers=EN)
    assert "certification/1" in review.text and "report_sha256" in review.text
    assert "Certify the report" in review.text and 'class="map"' in review.text
    assert "The platform keeps your organisation" in review.text
    # the platform's measurement, parcel by parcel, next to the report's claim (issue 15)
    assert "Conservative estimate of the platform&#39;s run: 1200 t" in review.text
    assert plot.code in review.text and hashlib.sha256(plot.geometry_wkb).hexdigest()[:16] in (
        review.text
    )

    empty = client.post(
        f"/verifier/periods/{first_period}/return",
        data={"csrf_token": csrf, "comments": " "},
        headers=EN,
    )
    assert empty.status_code == 422 and 'id="f-comments-error"' in empty.text
    returned = client.post(
        f"/verifier/periods/{first_period}/return",
        data={"csrf_token": csrf, "comments": "地块 P0003 的云掩膜比例过高，请补充影像。"},
        follow_redirects=False,
    )
    assert returned.status_code == 303

    certified = client.post(
        f"/verifier/periods/{second_period}/certify",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert certified.status_code == 303
    after = client.get(f"/verifier/periods/{second_period}", headers=EN)
    assert "signature verifies" in after.text and "Certify the report" not in after.text
    queue = client.get("/verifier", headers=EN)
    assert f"/verifier/periods/{first_period}" not in queue.text  # returned: out of the queue
    assert "Certified by your organisation" in queue.text

    as_(client, faces.coop)
    coop_view = client.get(f"/coop/projects/{first.id}", headers=EN)
    assert "地块 P0003 的云掩膜比例过高" in coop_view.text  # the comments reach the cooperative


def test_a_verifier_with_its_own_key_pastes_the_signature(
    client: TestClient, session: Session, faces: Faces
) -> None:
    project = helpers.project(session, faces.roles, status=ProjectStatus.submitted)
    period = projects.periods(session, project.id)[0]
    own = SigningKey.generate()
    assert faces.verifier.actor.organisation_id is not None
    keys.register_public_key(
        session,
        actor=faces.verifier.actor,
        organisation_id=faces.verifier.actor.organisation_id,
        public_key=base64.b64encode(own.public_raw).decode(),
    )
    message = projects.certification_message_for(project, period)
    period_id = period.id
    session.commit()
    csrf = as_(client, faces.verifier)
    page = client.get(f"/verifier/periods/{period_id}", headers=EN)
    assert 'name="signature"' in page.text
    wrong = client.post(
        f"/verifier/periods/{period_id}/certify",
        data={"csrf_token": csrf, "signature": SigningKey.generate().sign(message)},
        headers=EN,
    )
    assert wrong.status_code == 422 and 'id="f-signature-error"' in wrong.text
    right = client.post(
        f"/verifier/periods/{period_id}/certify",
        data={"csrf_token": csrf, "signature": own.sign(message)},
        follow_redirects=False,
    )
    assert right.status_code == 303


def test_authority_files_and_issues(client: TestClient, session: Session, faces: Faces) -> None:
    project = helpers.project(
        session, faces.roles, status=ProjectStatus.certified, issuable=800, buffer=160
    )
    period_id = projects.periods(session, project.id)[0].id
    session.commit()
    csrf = as_(client, faces.authority)
    console = client.get("/authority", headers=EN)
    assert f"/authority/periods/{period_id}" in console.text
    page = client.get(f"/authority/periods/{period_id}", headers=EN)
    assert "signature verifies" in page.text and "File the certified quantity" in page.text
    filed = client.post(
        f"/authority/periods/{period_id}/file", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert filed.status_code == 303
    twice = client.post(
        f"/authority/periods/{period_id}/file", data={"csrf_token": csrf}, headers=EN
    )
    assert twice.status_code == 409 and 'id="f-file-error"' in twice.text
    page = client.get(f"/authority/periods/{period_id}", headers=EN)
    assert 'name="quantity_t"' in page.text and 'value="800"' in page.text
    too_much = client.post(
        f"/authority/periods/{period_id}/issue",
        data={"csrf_token": csrf, "quantity_t": "801"},
        headers=EN,
    )
    assert too_much.status_code == 409 and 'id="f-quantity_t-error"' in too_much.text
    issued = client.post(
        f"/authority/periods/{period_id}/issue",
        data={"csrf_token": csrf, "quantity_t": "600"},
        follow_redirects=False,
    )
    assert issued.status_code == 303
    batch = issuance.batches_of_project(session, project.id)[0]
    assert batch.quantity_t == 600 and batch.buffer_t == 120  # the buffer scales with the quantity
    prefix, code = batch.serial_prefix, project.code
    session.rollback()
    public = client.get(f"/projects/{code}", headers=EN)
    assert prefix in public.text


def test_authority_confirms_proposed_losses_and_suspends(
    client: TestClient, session: Session, faces: Faces
) -> None:
    project = helpers.project(session, faces.roles, status=ProjectStatus.issued)
    parcel_id = projects.project_parcels(session, project.id)[0].id
    proposals = [
        reversals.propose_reversal(
            session,
            actor=faces.roles.coop,
            project_id=project.id,
            parcel_ids=[parcel_id],
            cause=LossCause.fire,
            occurred_on=date(2025, 3, day),
            estimated_loss_t=loss,
            description="山火",
        ).id
        for day, loss in ((1, 50), (2, 30))
    ]
    session.commit()
    csrf = as_(client, faces.authority)
    url = f"/authority/projects/{project.id}"
    page = client.get(url, headers=EN)
    assert "Proposed, awaiting the authority" in page.text and "Confirm the loss" in page.text
    assert "Report a loss (reversal)" not in page.text  # the authority confirms, never proposes
    confirmed = client.post(
        f"/authority/reversals/{proposals[0]}/confirm",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert confirmed.status_code == 303
    rejected = client.post(
        f"/authority/reversals/{proposals[1]}/reject",
        data={"csrf_token": csrf, "reason": "核查无损失"},
        follow_redirects=False,
    )
    assert rejected.status_code == 303
    again = client.post(
        f"/authority/reversals/{proposals[0]}/confirm", data={"csrf_token": csrf}, headers=EN
    )
    assert again.status_code == 409 and "already confirmed" in again.text
    page = client.get(url, headers=EN)
    assert "Fire" in page.text and "2025-03-01" in page.text and "Rejected" in page.text
    session.rollback()
    decided = {r.id: r for r in reversals.reversals_of(session, project.id)}
    assert decided[proposals[0]].cancelled_own_buffer_t == 50
    assert decided[proposals[0]].confirmed_by is not None
    assert decided[proposals[1]].cancelled_own_buffer_t == 0
    session.rollback()  # SQLite: free the database for the app's writes
    no_reason = client.post(f"{url}/suspend", data={"csrf_token": csrf, "reason": ""}, headers=EN)
    assert no_reason.status_code == 422 and 'id="f-suspend_reason-error"' in no_reason.text
    for action in ("suspend", "resume", "terminate"):
        done = client.post(
            f"{url}/{action}", data={"csrf_token": csrf, "reason": "核查"}, follow_redirects=False
        )
        assert done.status_code == 303, action
    page = client.get(url, headers=EN)
    assert "The unsold credits are suspended" in page.text
    no_reason = client.post(
        f"{url}/reinstate_credits", data={"csrf_token": csrf, "reason": ""}, headers=EN
    )
    assert no_reason.status_code == 422 and "f-reinstate_credits_reason-error" in no_reason.text
    cancelled = client.post(
        f"{url}/cancel_credits",
        data={"csrf_token": csrf, "reason": "项目无效"},
        follow_redirects=False,
    )
    assert cancelled.status_code == 303
    assert "The unsold credits were cancelled." in client.get(url, headers=EN).text
    session.expire_all()
    final = projects.get_project_unchecked(session, project.id)
    assert final.status == ProjectStatus.terminated and final.credits_decision == "cancelled"
    session.rollback()
    assert client.get(f"{url}/explode", headers=EN).status_code == 405
    assert client.post(f"{url}/explode", data={"csrf_token": csrf}, headers=EN).status_code == 404


def test_consoles_leave_periods_they_may_not_touch_alone(
    client: TestClient, session: Session, faces: Faces
) -> None:
    project = helpers.project(session, faces.roles, status=ProjectStatus.submitted)
    period_id = projects.periods(session, project.id)[0].id
    session.commit()
    csrf = as_(client, faces.authority)
    refused = client.post(
        f"/authority/periods/{period_id}/file", data={"csrf_token": csrf}, headers=EN
    )
    assert refused.status_code == 409  # submitted, not certified
    coop_csrf = as_(client, faces.coop)
    assert (
        client.post(
            f"/verifier/periods/{period_id}/certify", data={"csrf_token": coop_csrf}, headers=EN
        ).status_code
        == 403
    )
    session.expire_all()
    assert projects.periods(session, project.id)[0].status == PeriodStatus.submitted
