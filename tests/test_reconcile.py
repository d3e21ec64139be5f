"""`reconcile`: the ledger is the truth; a drifted counter is reported (exit 1) and repaired by --fix."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command
from django.db.models import F

from campaigns.models import Campaign, CampaignTotal, Donation
from campaigns.services import ledger
from campaigns.tasks import reconcile_totals
from tests.worker import ROOT, process_env


def _give(campaign: Campaign, n: int = 3) -> None:
    for i in range(n):
        ledger.donation_record(campaign=campaign, source="manual", external_id=f"m{i}", amount_minor=1000 * (i + 1),
                               donor_email=f"d{i}@example.org")


def _corrupt(campaign: Campaign) -> None:
    CampaignTotal.objects.filter(campaign=campaign).update(total_minor=F("total_minor") + 500,
                                                           donor_count=F("donor_count") - 1)


def test_reconcile_reports_no_drift_on_a_healthy_ledger(db, campaign, capsys):
    _give(campaign)
    call_command("reconcile")
    assert "OK: 1 campaign(s) match the ledger." in capsys.readouterr().out


def test_reconcile_detects_a_corrupted_total_naming_campaign_and_amounts(db, campaign, capsys):
    _give(campaign)
    _corrupt(campaign)
    with pytest.raises(CommandError, match="drifted"):
        call_command("reconcile")
    out = capsys.readouterr().out
    assert "test-campaign: total_minor stored 6500, ledger says 6000" in out
    assert "test-campaign: donor_count stored 2, ledger says 3" in out
    # Reporting repairs nothing.
    assert CampaignTotal.objects.get(campaign=campaign).total_minor == 6500


def test_reconcile_fix_repairs_the_counter_and_bumps_the_version(db, campaign, capsys):
    _give(campaign)
    _corrupt(campaign)
    version = CampaignTotal.objects.get(campaign=campaign).version
    call_command("reconcile", "--fix", "--campaign", campaign.slug)
    assert "FIXED: 2 counter(s)" in capsys.readouterr().out
    total = CampaignTotal.objects.get(campaign=campaign)
    assert (total.total_minor, total.donation_count, total.donor_count) == (6000, 3, 3)
    assert total.version == version + 1
    call_command("reconcile")  # clean again: no exception


def test_reconcile_checks_each_donations_balance_and_fix_repairs_it(db, campaign, capsys):
    _give(campaign)
    donation = Donation.objects.get(external_id="m1")
    Donation.objects.filter(pk=donation.pk).update(balance_minor=0)  # the gift would no longer count
    with pytest.raises(CommandError, match="drifted"):
        call_command("reconcile")
    assert f"test-campaign: balance_minor of donation {donation.pk} stored 0, ledger says 2000" in (
        capsys.readouterr().out
    )
    call_command("reconcile", "--fix")
    assert Donation.objects.get(pk=donation.pk).balance_minor == 2000
    call_command("reconcile")  # clean again: no exception


def test_reconcile_unknown_campaign_is_a_clear_error(db, campaign):
    with pytest.raises(CommandError, match="unknown campaign 'unknown'"):
        call_command("reconcile", "--campaign", "unknown")


def test_periodic_reconcile_task_logs_drift(db, campaign, caplog):
    _give(campaign, 1)
    _corrupt(campaign)
    with caplog.at_level(logging.ERROR, logger="campaigns.tasks"):
        reconcile_totals()
    assert "ledger drift: test-campaign: total_minor stored 1500, ledger says 1000" in caplog.text


@pytest.mark.postgres
def test_reconcile_command_exits_1_on_drift_and_0_after_fix(transactional_db, campaign):
    _give(campaign, 2)
    _corrupt(campaign)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "manage.py", "reconcile", *args], cwd=ROOT, env=process_env(),
                              capture_output=True, text=True, timeout=60)

    drifted = run()
    assert drifted.returncode == 1
    assert "total_minor stored 3500, ledger says 3000" in drifted.stdout
    assert "--fix" in drifted.stderr
    assert run("--fix").returncode == 0
    assert run().returncode == 0
    unknown = run("--campaign", "unknown")
    assert unknown.returncode == 1 and "unknown campaign 'unknown'" in unknown.stderr


def test_reconcile_recounts_the_refunds_waiting_for_their_success(db, campaign, client):
    from campaigns.models import PaymentEvent
    from campaigns.services import intake, reconcile
    from tests.factories import post_webhook, webhook_body

    post_webhook(client, webhook_body(event_id="evt_wait", type="donation.refunded", donation_id="don_w",
                                      amount_minor=100))
    intake.payment_event_process(event_id=PaymentEvent.objects.get().pk)
    assert reconcile.campaign_reconcile(campaign=campaign) == []
    CampaignTotal.objects.filter(campaign=campaign).update(deferred_events=0)
    drifts = reconcile.campaign_reconcile(campaign=campaign, fix=True)
    assert [(d.field, d.stored, d.computed) for d in drifts] == [("deferred_events", 0, 1)]
    assert CampaignTotal.objects.get(campaign=campaign).deferred_events == 1
