"""The demo path end to end through the ledger service."""

import pytest
from django.core.management import call_command

from campaigns.models import CampaignTotal


def test_seed_demo_is_idempotent_and_exact(db):
    call_command("seed_demo")
    call_command("seed_demo")
    total = CampaignTotal.objects.get(campaign__slug="mai-juin-2023")
    assert (total.total_minor, total.donation_count, total.donor_count) == (2_007_700, 455, 412)


@pytest.mark.parametrize("path", ["/c/printemps/", "/healthz"])
@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_read_only_urls_refuse_other_methods_with_405(client, live, path, method):
    response = getattr(client, method)(path)
    assert response.status_code == 405
    assert client.get(path).status_code == 200
    assert client.head(path).status_code == 200
