"""The real payment providers start only with every key they need; the daily limit has a
Korean default and can be turned off."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from missionlink import bootstrap
from missionlink.adapters.payments.real import PortOneProvider, StripeProvider
from missionlink.config import Settings

PORTONE: dict[str, Any] = {"portone_api_secret": "s", "portone_webhook_secret": "whsec_AAAA",
           "portone_store_id": "store-1", "portone_channel_key": "channel-key-1"}
STRIPE: dict[str, Any] = {"stripe_secret_key": "sk_test_1", "stripe_publishable_key": "pk_test_1",
          "stripe_webhook_secret": "whsec_1"}


@pytest.mark.parametrize(("provider", "needs"), [("portone", PORTONE), ("stripe", STRIPE)])
def test_a_real_provider_needs_all_its_keys(provider: str, needs: dict[str, Any]) -> None:
    settings = Settings(payment_provider=provider, **needs)
    made = bootstrap.payment_provider(settings)
    assert made.name == provider
    assert isinstance(made, PortOneProvider if provider == "portone" else StripeProvider)
    for missing in needs:
        partial = {k: v for k, v in needs.items() if k != missing}
        with pytest.raises(ValidationError) as err:
            Settings(payment_provider=provider, **partial)
        assert missing.upper() in str(err.value)


def test_unknown_providers_are_refused_and_the_limit_defaults_to_a_million() -> None:
    with pytest.raises(ValidationError):
        Settings(payment_provider="paypal")
    assert Settings().daily_topup_limit == 1_000_000
    assert Settings(daily_topup_limit=0).daily_topup_limit == 0
    with pytest.raises(ValidationError):
        Settings(daily_topup_limit=-1)


def test_prod_accepts_a_real_provider() -> None:
    s = Settings(
        env="prod", smtp_tls="tls", smtp_host="email-smtp.example.com",
        database_url="postgresql://app@db/core", identity_database_url="postgresql://app@db/id",
        jwt_private_key="-----BEGIN PRIVATE KEY-----", broker_url="redis://cache:6379/0",
        payment_provider="portone", **PORTONE,
    )
    assert s.payment_provider == "portone"
