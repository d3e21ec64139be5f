"""A real worker applies a signed webhook end to end (HTTP → stored → broker → worker → total)."""

import pytest

from campaigns.models import CampaignTotal
from tests.factories import post_webhook, webhook_body
from tests.worker import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.worker]


def test_worker_applies_a_webhook(worker, campaign, client):
    response = post_webhook(client, webhook_body(event_id="evt_smoke", amount_minor=2500))
    assert response.status_code == 202
    wait_until(
        lambda: CampaignTotal.objects.get(campaign=campaign).total_minor == 2500,
        message="the worker to apply the event",
    )
