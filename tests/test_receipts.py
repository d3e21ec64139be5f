"""Receipt e-mails: in the campaign's language, sent exactly once however often the task runs."""

from __future__ import annotations

import pytest
from django.core import mail

from campaigns.models import Donation
from campaigns.services import ledger, pledges, receipts
from campaigns.tasks import send_receipt

pytestmark = pytest.mark.django_db


@pytest.fixture
def confirmed(campaign) -> Donation:
    donation = pledges.pledge_create(campaign=campaign, provider="sandbox", amount_minor=2500,
                                     donor_name="Marie Curie", donor_email="marie@example.org")
    return ledger.donation_confirm(donation_id=donation.pk)


def test_receipt_is_sent_once_when_its_task_runs_twice(confirmed):
    send_receipt.apply(args=[confirmed.pk]).get()
    send_receipt.apply(args=[confirmed.pk]).get()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["marie@example.org"]
    assert message.subject == "Merci pour votre don à « Campagne de test »"
    assert "25,00\xa0€" in message.body and confirmed.reference in message.body
    confirmed.refresh_from_db()
    assert confirmed.receipt_sent_at is not None


def test_receipt_speaks_the_campaigns_language(campaign, confirmed):
    campaign.locale = "en"
    campaign.save()
    assert receipts.receipt_send(donation_id=confirmed.pk) is True
    assert mail.outbox[0].subject == "Thank you for your gift to “Campagne de test”"
    assert "We have received your gift of €25.00" in mail.outbox[0].body


def test_no_receipt_before_confirmation_or_without_an_address(campaign):
    pending = pledges.pledge_create(campaign=campaign, provider="sandbox", amount_minor=2500,
                                    donor_email="a@example.org")
    silent = pledges.pledge_create(campaign=campaign, provider="sandbox", amount_minor=2500)
    ledger.donation_confirm(donation_id=silent.pk)
    assert receipts.receipt_send(donation_id=pending.pk) is False
    assert receipts.receipt_send(donation_id=silent.pk) is False
    assert mail.outbox == []


def test_a_failed_send_releases_the_claim_so_a_retry_sends_it(confirmed, settings):
    settings.EMAIL_BACKEND = "tests.test_receipts.BrokenBackend"
    with pytest.raises(OSError):
        receipts.receipt_send(donation_id=confirmed.pk)
    confirmed.refresh_from_db()
    assert confirmed.receipt_sent_at is None
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert receipts.receipt_send(donation_id=confirmed.pk) is True
    assert len(mail.outbox) == 1


def test_confirmation_enqueues_the_receipt_on_commit(campaign, django_capture_on_commit_callbacks):
    donation = pledges.pledge_create(campaign=campaign, provider="sandbox", amount_minor=2500,
                                     donor_email="marie@example.org")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ledger.donation_confirm(donation_id=donation.pk)
    # The receipt's callback is one of them; run them all as a commit would (eager for the test).
    from django.test import override_settings

    with override_settings(CELERY_TASK_ALWAYS_EAGER=True):
        from config.celery import app

        app.conf.task_always_eager = True
        try:
            for callback in callbacks:
                callback()
        finally:
            app.conf.task_always_eager = False
    assert len(mail.outbox) == 1


class BrokenBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise OSError("SMTP server unreachable")
