"""Sign-in codes through Alibaba Cloud SMS (a local double on its wire format), never in a log,
and production refusing the ``log`` provider."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import Session, select

from tanhui import sms
from tanhui.app import create_app
from tanhui.crypto import load_or_create_signing_key
from tanhui.models import OneTimeCode
from tanhui.settings import (
    Environment,
    Settings,
    SettingsError,
    check_production,
    load_settings,
    use_settings,
)
from tests.kernel.aliyun_sms_double import AliyunSmsDouble, serve

PHONE = "13957206601"


@pytest.fixture
def double() -> Iterator[AliyunSmsDouble]:
    yield from serve()


def with_aliyun(settings: Settings, double: AliyunSmsDouble, **changes: object) -> Settings:
    configured = settings.model_copy(
        update={
            "sms_provider": "aliyun",
            "sms_access_key_id": double.access_key_id,
            "sms_access_key_secret": SecretStr(double.access_key_secret),
            "sms_sign_name": double.sign_name,
            "sms_template_code": double.template_code,
            "sms_endpoint": double.base_url,
            **changes,
        }
    )
    use_settings(configured)
    return configured


@pytest.fixture
def aliyun_client(settings: Settings, double: AliyunSmsDouble) -> Iterator[TestClient]:
    application = create_app(with_aliyun(settings, double))
    with TestClient(application, base_url="http://testserver") as client:
        yield client
    application.state.engine.dispose()


def test_the_signature_is_alibaba_clouds_documented_example() -> None:
    # The worked example of the SMS signature documentation: AccessKey testId / testSecret.
    params = {
        "AccessKeyId": "testId",
        "Action": "SendSms",
        "Format": "XML",
        "OutId": "123",
        "PhoneNumbers": "15300000001",
        "RegionId": "cn-hangzhou",
        "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_71390007",
        "TemplateParam": '{"customer":"test"}',
        "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }
    assert sms.sign("GET", params, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    assert sms.percent_encode("a b*~+") == "a%20b%2A~%2B"


def test_a_code_goes_out_through_aliyun_and_signs_the_resident_in(
    aliyun_client: TestClient, double: AliyunSmsDouble, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sent = aliyun_client.post("/api/v1/auth/residents/code", json={"phone": PHONE})
    assert sent.status_code == 202, sent.text
    (code,) = double.codes_to(PHONE)
    assert re.fullmatch(r"\d{6}", code)
    (request,) = double.requests
    assert request["Action"] == "SendSms" and request["SignName"] == "碳惠"
    signed_in = aliyun_client.post(
        "/api/v1/auth/residents/session", json={"phone": PHONE, "code": code}
    )
    assert signed_in.status_code == 200
    # the code went to the provider only: not to the log, not to the console double
    assert code not in caplog.text
    assert sms.last_message_to("+86" + PHONE) is None


def test_a_refusing_provider_answers_503_and_keeps_nothing(
    aliyun_client: TestClient, double: AliyunSmsDouble, session: Session
) -> None:
    double.refuse_with = "isv.BUSINESS_LIMIT_CONTROL"
    refused = aliyun_client.post("/api/v1/auth/residents/code", json={"phone": PHONE})
    assert refused.status_code == 503
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"].endswith("/sms/not-sent")
    assert session.exec(select(OneTimeCode)).all() == []
    session.rollback()
    # the refused message did not use up the phone's one-a-minute limit
    double.refuse_with = None
    again = aliyun_client.post("/api/v1/auth/residents/code", json={"phone": PHONE})
    assert again.status_code == 202
    assert len(double.codes_to(PHONE)) == 1


def test_a_wrong_secret_is_refused_by_the_provider_and_answers_503(
    settings: Settings, double: AliyunSmsDouble
) -> None:
    configured = with_aliyun(
        settings, double, sms_access_key_secret=SecretStr("another-key-0123456789")
    )
    application = create_app(configured)
    with TestClient(application) as client:
        answer = client.post("/api/v1/auth/residents/code", json={"phone": PHONE})
    application.state.engine.dispose()
    assert answer.status_code == 503
    assert double.delivered == []
    assert double.requests  # it was asked, and said SignatureDoesNotMatch


def _production(tmp_path: Path, **changes: object) -> Settings:
    key_file = tmp_path / "signing_key.pem"
    load_or_create_signing_key(key_file)
    values: dict[str, object] = {
        "env": Environment.production,
        "secret_key": "k7Pq2vW9xZr4Tb8Ny3Hc6Lm1Df5Gj0Sa-Ue",
        "data_key": "MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1ub3BxcnN0dXY=",
        "signing_key_file": key_file,
        "database_url": "sqlite://",
    }
    values.update(changes)
    return load_settings(**values)


def test_production_refuses_the_log_provider(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="TANHUI_SMS_PROVIDER=log"):
        create_app(_production(tmp_path))
    check_production(
        _production(
            tmp_path,
            sms_provider="aliyun",
            sms_access_key_id="LTAI5tQ2mVz8",
            sms_access_key_secret="Hq3vN8rT2wLk5pZ9cX1bM4jD7fG0sA",
            sms_template_code="SMS_480000001",
        )
    )


def test_the_aliyun_provider_needs_its_keys() -> None:
    with pytest.raises(SettingsError, match="TANHUI_SMS_ACCESS_KEY_SECRET"):
        load_settings(sms_provider="aliyun", sms_access_key_id="LTAI5tQ2mVz8")
    with pytest.raises(SettingsError, match="TANHUI_SMS_PROVIDER"):
        load_settings(sms_provider="carrier-pigeon")
