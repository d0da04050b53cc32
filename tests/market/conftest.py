"""Market fixtures: a world with an issued batch, the Stripe double and settings that use it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import Session

from tanhui.app import create_app
from tanhui.settings import Settings, use_settings
from tests.market import helpers
from tests.market.stripe_double import StripeDouble, serve


@pytest.fixture
def world(session: Session) -> helpers.World:
    return helpers.issued_world(session)


@pytest.fixture
def stripe_double() -> Iterator[StripeDouble]:
    yield from serve()


def with_stripe(settings: Settings, double: StripeDouble) -> Settings:
    configured = settings.model_copy(
        update={
            "stripe_secret_key": SecretStr(double.secret_key),
            "stripe_webhook_secret": SecretStr(double.webhook_secret),
            "stripe_api_base": double.base_url,
        }
    )
    use_settings(configured)
    return configured


@pytest.fixture
def stripe_settings(settings: Settings, stripe_double: StripeDouble) -> Settings:
    return with_stripe(settings, stripe_double)


@pytest.fixture
def stripe_client(stripe_settings: Settings) -> Iterator[TestClient]:
    application = create_app(stripe_settings)
    with TestClient(application, base_url="http://testserver") as client:
        yield client
    application.state.engine.dispose()
