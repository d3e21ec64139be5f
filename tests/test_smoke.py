"""The demo path end to end through the ledger service."""

from django.core.management import call_command

from campaigns.models import CampaignTotal


def test_seed_demo_is_idempotent_and_exact(db):
    call_command("seed_demo")
    call_command("seed_demo")
    total = CampaignTotal.objects.get(campaign__slug="mai-juin-2023")
    assert (total.total_minor, total.donation_count, total.donor_count) == (2_007_700, 455, 412)
