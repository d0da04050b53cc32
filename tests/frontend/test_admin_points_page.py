"""The carbon points administration page (/admin/points): every refused field says why, next to
the field, in the admin's language; a new factor version and a partner's keys can be managed."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session

from mrv.inclusive import local_date
from registry.inclusion.service import partners
from tanhui.db import utcnow
from tests import factories

PAGE = "/admin/points"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def _error_next_to(html: str, field_id: str) -> str:
    """The error paragraph that describes the field ``field_id`` (asserting both halves)."""
    tag = re.search(rf'<(?:input|select)[^>]*id="{re.escape(field_id)}"[^>]*>', html)
    assert tag, f"no field {field_id}"
    assert 'aria-invalid="true"' in tag.group(0), tag.group(0)
    assert f'aria-describedby="{field_id}-error"' in tag.group(0), tag.group(0)
    message = re.search(rf'<p class="error" id="{re.escape(field_id)}-error">([^<]+)</p>', html)
    assert message, f"no error shown next to {field_id}"
    return message.group(1)


def _version_form(csrf: str, **changes: str) -> dict[str, str]:
    form = {
        "csrf_token": csrf,
        "scenario": "bus",
        "variant": "",
        "version": "9.1",
        "grams_per_unit": "30",
        "daily_cap": "6",
        "valid_from": (local_date(utcnow()) + timedelta(days=30)).isoformat(),
        "baseline": "private car",
        "source": "test source",
    }
    form.update(changes)
    return form


def test_factor_version_errors_are_shown_next_to_their_field(
    client: TestClient, session: Session
) -> None:
    admin = factories.user(session, admin=True)
    session.commit()
    factories.login(client, admin.email)
    client.cookies.set("tanhui_lang", "en")
    csrf = _csrf(client.get(PAGE).text)
    for field, field_id, value in [
        ("grams_per_unit", "mv-factor", "-3"),
        ("daily_cap", "mv-cap", "many"),
        ("scenario", "mv-scenario", "teleport"),
        ("valid_from", "mv-from", "2020-01-01"),
    ]:
        refused = client.post(f"{PAGE}/methodologies", data=_version_form(csrf, **{field: value}))
        assert refused.status_code == 422, (field, refused.status_code)
        message = _error_next_to(refused.text, field_id)
        assert message.strip(), field
    # in Chinese by default
    client.cookies.delete("tanhui_lang")
    refused = client.post(f"{PAGE}/methodologies", data=_version_form(csrf, daily_cap="x"))
    assert "1234.5" in _error_next_to(refused.text, "mv-cap")
    assert re.search(r"[\u4e00-\u9fff]", _error_next_to(refused.text, "mv-cap"))
    # and a good version is added and listed
    added = client.post(f"{PAGE}/methodologies", data=_version_form(csrf))
    assert added.status_code == 200 and 'class="error"' not in added.text
    assert "<td>9.1</td>" in added.text


def test_a_partner_key_error_is_shown_in_that_partners_row(
    client: TestClient, session: Session
) -> None:
    admin = factories.user(session, admin=True)
    first = partners.create_partner(session, name="甲公交（测试）", scenarios=["bus"], actor="t")
    second = partners.create_partner(session, name="乙地铁（测试）", scenarios=["metro"], actor="t")
    session.commit()
    factories.login(client, admin.email)
    csrf = _csrf(client.get(PAGE).text)
    refused = client.post(
        f"{PAGE}/partners/{second.partner.id}/keys",
        data={"csrf_token": csrf, "kind": "ed25519", "public_key": "not-a-key"},
    )
    assert refused.status_code == 422
    assert _error_next_to(refused.text, f"pk-{second.partner.id}")
    assert f'id="pk-{first.partner.id}-error"' not in refused.text
    # a new secret, then the old key can be revoked
    renewed = client.post(
        f"{PAGE}/partners/{first.partner.id}/keys", data={"csrf_token": csrf, "kind": "hmac"}
    )
    assert renewed.status_code == 200 and 'class="secret">thsk_' in renewed.text
    old_key = first.key.id
    revoked = client.post(
        f"{PAGE}/partners/{first.partner.id}/keys/{old_key}/revoke", data={"csrf_token": csrf}
    )
    assert revoked.status_code == 200
    assert f'action="{PAGE}/partners/{first.partner.id}/keys/{old_key}/revoke"' not in revoked.text
