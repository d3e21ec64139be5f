"""Bad input gets a clear answer, never a 500 or a loop: events that keep raising stop as `failed`,
webhook e-mails are validated, every amount of every form is bounded by the global cap."""

from __future__ import annotations

import html as htmllib
import json

import pytest
from django.db import connection
from django.test import Client

from campaigns.models import MAX_AMOUNT_MINOR, Campaign, CampaignTotal, Donation, PaymentEvent
from campaigns.services import intake, ledger, pledges
from tests.factories import post_webhook, webhook_body
from tests.staff_world import staff_world
from tests.test_admin_campaigns import _form
from tests.test_donate import donate

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return htmllib.unescape(response.content.decode())


def test_an_event_that_keeps_raising_unexpectedly_becomes_failed_after_n_attempts(client, campaign, settings):
    settings.EVENT_MAX_ATTEMPTS = 3
    # A NUL character is valid JSON but no PostgreSQL text can hold it: the insert raises an
    # error no business check foresaw.
    body = json.loads(webhook_body(event_id="evt_nul"))
    body["data"]["donor"]["name"] = "Ma\u0000rie"
    assert post_webhook(client, json.dumps(body).encode()).status_code == 202
    event = PaymentEvent.objects.get()

    for attempt in (1, 2):
        with pytest.raises(Exception):  # noqa: B017 (whatever the driver raises is the point)
            intake.payment_event_process(event_id=event.pk)
        event.refresh_from_db()
        assert (event.status, event.attempts) == (PaymentEvent.Status.RECEIVED, attempt)
        assert f"unexpected error ({attempt}/3)" in event.last_error
    with pytest.raises(Exception):  # noqa: B017
        intake.payment_event_process(event_id=event.pk)
    event.refresh_from_db()
    assert (event.status, event.attempts) == (PaymentEvent.Status.FAILED, 3)
    assert "unexpected error (3/3)" in event.last_error
    # No longer re-sent by the sweeper; shown to editors with its error; the money never moved.
    assert intake.unprocessed_events_sweep(older_than_seconds=-60) == []
    assert Donation.objects.count() == 0 and CampaignTotal.objects.get(campaign=campaign).total_minor == 0
    editor = Client()
    editor.force_login(staff_world()["finance"])
    listing = editor.get("/admin/campaigns/paymentevent/?status__exact=failed").content.decode()
    assert "evt_nul" in listing and "unexpected error" in listing


def test_a_webhook_donor_email_that_is_not_an_address_answers_400_naming_the_field(client, campaign):
    body = json.loads(webhook_body(event_id="evt_bad_mail"))
    body["data"]["donor"]["email"] = "marie at example"
    response = post_webhook(client, json.dumps(body).encode())
    assert response.status_code == 400
    assert "data.donor.email" in response.json()["error"]
    assert not PaymentEvent.objects.exists()


def test_an_impossible_date_answers_400_not_500(client, campaign):
    body = json.loads(webhook_body(event_id="evt_bad_date"))
    body["data"]["occurred_at"] = "2023-13-45T10:00:00Z"
    response = post_webhook(client, json.dumps(body).encode())
    assert response.status_code == 400
    assert "data.occurred_at" in response.json()["error"]


@pytest.fixture
def finance(db) -> Client:
    client = Client()
    client.force_login(staff_world()["finance"])
    return client


def test_a_manual_entry_above_the_cap_is_a_form_error(finance, campaign):
    data = {"campaign": campaign.pk, "method": "cheque", "amount": "10000000,01", "received_at": "2026-11-20 09:30"}
    response = finance.post("/admin/campaigns/donation/manual/", data)
    assert response.status_code == 200
    assert "Montant trop élevé" in _text(response)
    assert not Donation.objects.exists()


def test_a_correction_has_an_upper_bound_either_way(finance, campaign):
    gift, _ = ledger.donation_record(campaign=campaign, source=Donation.Source.MANUAL, external_id="cash:1",
                                     amount_minor=5000)
    for delta in ("20000000", "-20000000"):
        response = finance.post(f"/admin/campaigns/donation/{gift.pk}/correct/", {"delta": delta, "reason": "x"})
        assert response.status_code == 200 and "Montant trop élevé" in _text(response)
    assert CampaignTotal.objects.get(campaign=campaign).total_minor == 5000


@pytest.mark.parametrize(("overrides", "field"), [
    ({"max_amount_minor": "10000000,01"}, "max_amount_minor"),
    ({"min_amount_minor": "20000000", "max_amount_minor": "30000000"}, "min_amount_minor"),
    ({"preset_amounts_minor": "10 ; 99999999"}, "preset_amounts_minor"),
])
def test_campaign_amounts_above_the_cap_are_refused_in_the_form(overrides, field):
    client = Client()
    client.force_login(staff_world()["editor"])
    response = client.post("/admin/campaigns/campaign/add/", _form(**overrides))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert "Montant trop élevé" in _text(response)
    assert not Campaign.objects.filter(slug="mai-juin").exists()


def test_a_campaign_maximum_above_the_cap_never_loops_on_references(client, campaign, settings, caplog):
    """A campaign saved with a maximum above the cap (before the form refused it): the reader gets
    the form's error, and a pledge above the cap is refused at once, never retried as a
    "reference taken" clash."""
    settings.DONATE_RATE_LIMIT = "1000/m"
    settings.PAYMENT_PROVIDERS = ["sandbox"]
    Campaign.objects.filter(pk=campaign.pk).update(max_amount_minor=MAX_AMOUNT_MINOR * 2)
    campaign.refresh_from_db()
    response = donate(client, amount="15000000")
    assert response.status_code == 400
    assert "Le don maximum est de 10\u202f000\u202f000,00\xa0€" in _text(response)

    with pytest.raises(pledges.PledgeError, match="outside the campaign's bounds"):
        pledges.pledge_create(campaign=campaign, provider="sandbox", amount_minor=MAX_AMOUNT_MINOR + 1)
    assert "already taken" not in caplog.text
    assert not Donation.objects.exists()


def test_a_pledge_integrity_error_other_than_the_reference_is_not_retried(campaign, monkeypatch):
    from django.db import IntegrityError

    draws = []
    real = pledges.reference_generate

    def counting():
        draws.append(1)
        return real()

    monkeypatch.setattr(pledges, "reference_generate", counting)
    # The check constraint on amounts, reached by bypassing the service's own bound.
    monkeypatch.setattr(pledges, "MAX_AMOUNT_MINOR", MAX_AMOUNT_MINOR * 10)
    Campaign.objects.filter(pk=campaign.pk).update(max_amount_minor=MAX_AMOUNT_MINOR * 10)
    campaign.refresh_from_db()
    with pytest.raises(IntegrityError):
        pledges.pledge_create(campaign=campaign, provider="sandbox", amount_minor=MAX_AMOUNT_MINOR + 1)
    assert len(draws) == 1
    assert connection.is_usable()


@pytest.mark.postgres
@pytest.mark.worker
def test_a_real_worker_and_the_sweeper_stop_retrying_an_event_that_keeps_raising(transactional_db, campaign, client):
    from campaigns.tasks import sweep_unprocessed
    from tests.worker import celery_worker, wait_until

    body = json.loads(webhook_body(event_id="evt_nul_worker"))
    body["data"]["donor"]["name"] = "Ma\u0000rie"
    with celery_worker(concurrency=1, EVENT_MAX_ATTEMPTS="3", SWEEP_AFTER_SECONDS="0"):
        assert post_webhook(client, json.dumps(body).encode()).status_code == 202

        def failed_after_sweeps() -> bool:
            event = PaymentEvent.objects.get()
            if event.status == PaymentEvent.Status.RECEIVED:
                sweep_unprocessed.delay()  # what beat does every 30 s
            return event.status == PaymentEvent.Status.FAILED

        wait_until(failed_after_sweeps, timeout=60, interval=1, message="the event to stop as failed")
    event = PaymentEvent.objects.get()
    assert event.attempts == 3 and "unexpected error (3/3)" in event.last_error
    assert CampaignTotal.objects.get(campaign=campaign).total_minor == 0
