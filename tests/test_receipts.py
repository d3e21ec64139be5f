"""Receipt e-mails: in the donor's language (else the campaign's), sent exactly once however often the task runs,
in batches over one mail connection."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.utils import timezone

from campaigns.models import Donation
from campaigns.services import pledges, receipts
from campaigns.tasks import send_receipts
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def confirmed(campaign) -> Donation:
    donation = pledges.pledge_create(campaign=campaign, provider="sandbox", amount_minor=2500,
                                     donor_name="Marie Curie", donor_email="marie@example.org")
    return factories.confirm(donation.pk)


def test_receipt_is_sent_once_when_its_task_runs_twice(confirmed):
    send_receipts.apply().get()
    send_receipts.apply().get()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["marie@example.org"]
    assert message.subject == "Merci pour votre don à « Campagne de test »"
    assert "25,00\xa0€" in message.body and confirmed.reference in message.body
    confirmed.refresh_from_db()
    assert confirmed.receipt_sent_at is not None


def test_a_receipt_without_the_donors_language_speaks_the_campaigns(campaign, confirmed):
    # A gift that came from elsewhere than the donation page (a webhook) has no language of its own.
    Donation.objects.filter(pk=confirmed.pk).update(locale="")
    campaign.locale = "en"
    campaign.save()
    assert receipts.receipts_send_due() == 1
    assert mail.outbox[0].subject == "Thank you for your gift to “Campagne de test”"
    assert "We have received your gift of €25.00" in mail.outbox[0].body


def test_no_receipt_before_confirmation_or_without_an_address(campaign):
    pledges.pledge_create(campaign=campaign, provider="sandbox", amount_minor=2500,  # pending
                                    donor_email="a@example.org")
    silent = pledges.pledge_create(campaign=campaign, provider="sandbox", amount_minor=2500)
    factories.confirm(silent.pk)
    assert receipts.receipts_send_due() == 0
    assert mail.outbox == []


def test_a_failed_send_releases_the_claim_so_a_retry_sends_it(confirmed, settings):
    settings.EMAIL_BACKEND = "tests.test_receipts.BrokenBackend"
    with pytest.raises(OSError):
        receipts.receipts_send_due()
    confirmed.refresh_from_db()
    assert confirmed.receipt_sent_at is None
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert receipts.receipts_send_due() == 1
    assert len(mail.outbox) == 1


def test_confirmation_enqueues_the_receipt_on_commit(campaign, django_capture_on_commit_callbacks):
    donation = pledges.pledge_create(campaign=campaign, provider="sandbox", amount_minor=2500,
                                     donor_email="marie@example.org")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        factories.confirm(donation.pk)
    # The receipt's callback is one of them; run them all as a commit would (eager for the test).
    from django.test import override_settings

    with override_settings(CELERY_TASK_ALWAYS_EAGER=True):
        from config.celery import app

        app.conf.task_always_eager = True
        try:
            # The test's own transaction is still open: the task the callbacks send waits for a
            # commit too, which this second capture stands for.
            with django_capture_on_commit_callbacks(execute=True):
                for callback in callbacks:
                    callback()
        finally:
            app.conf.task_always_eager = False
    assert len(mail.outbox) == 1


class BrokenBackend(BaseEmailBackend):
    def send_messages(self, messages):
        raise OSError("SMTP server unreachable")


def _confirmed(campaign, n: int, **fields) -> list[Donation]:
    donations = []
    for i in range(n):
        pledge = pledges.pledge_create(campaign=campaign, provider="sandbox", amount_minor=1000 + i,
                                       donor_email=f"donor{i}@example.org", **fields)
        donations.append(factories.confirm(pledge.pk))
    return donations


class CountingBackend(LocmemBackend):
    opened = 0

    def open(self):
        CountingBackend.opened += 1
        return super().open()


class FailingThirdBackend(LocmemBackend):
    def send_messages(self, messages):
        if len(mail.outbox) == 2:
            raise OSError("SMTP server went away")
        return super().send_messages(messages)


def test_a_burst_of_confirmations_is_sent_in_one_batch_over_one_connection(campaign, settings):
    settings.EMAIL_BACKEND = "tests.test_receipts.CountingBackend"
    CountingBackend.opened = 0
    donations = _confirmed(campaign, 12)
    assert receipts.receipts_send_due(batch_size=5) == 12
    assert sorted(m.to[0] for m in mail.outbox) == sorted(d.donor_email for d in donations)
    assert CountingBackend.opened == 3  # one connection per batch of 5, 5, 2
    # Run again (a duplicate task, beat's safety run): nothing is sent twice.
    send_receipts.apply().get()
    assert len(mail.outbox) == 12
    assert not Donation.objects.filter(receipt_sent_at__isnull=True).exists()


def test_a_failure_mid_batch_keeps_what_was_sent_and_the_retry_sends_the_rest(campaign, settings):
    settings.EMAIL_BACKEND = "tests.test_receipts.FailingThirdBackend"
    _confirmed(campaign, 5)
    with pytest.raises(OSError):
        receipts.receipts_send_due()
    assert len(mail.outbox) == 2
    assert Donation.objects.filter(receipt_sent_at__isnull=False).count() == 2
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert receipts.receipts_send_due() == 3
    assert len({m.to[0] for m in mail.outbox}) == 5


def test_old_donations_never_get_a_surprise_receipt(campaign):
    (old,) = _confirmed(campaign, 1)
    long_ago = timezone.now() - timedelta(days=30)
    Donation.objects.filter(pk=old.pk).update(created_at=long_ago, confirmed_at=long_ago)
    # A gift Jauge learns of today, whatever date the provider gives it, is receipted.
    (backdated,) = _confirmed(campaign, 1)
    Donation.objects.filter(pk=backdated.pk).update(confirmed_at=long_ago)
    assert receipts.receipts_send_due() == 1
    assert mail.outbox[0].to == [backdated.donor_email]


def test_confirmations_schedule_one_task_until_it_starts(campaign, monkeypatch):
    scheduled = []
    monkeypatch.setattr("campaigns.queue.send", lambda name, *args, **options: scheduled.append(options))
    for _ in range(3):
        receipts.receipts_schedule()
    assert scheduled == [{"countdown": 2, "priority": receipts.RECEIPTS_PRIORITY}]
    receipts.receipts_send_due()  # the task starts: the next confirmation schedules again
    receipts.receipts_schedule()
    assert len(scheduled) == 2


def test_one_refused_address_fails_its_receipt_alone_over_a_real_smtp_server(campaign, settings):
    from tests.smtp_server import SMTPServer

    donations = []
    for email in ("a@example.org", "refused@example.org", "b@example.org"):
        pledge = pledges.pledge_create(campaign=campaign, provider="sandbox", amount_minor=2500, donor_email=email)
        donations.append(factories.confirm(pledge.pk))
    with SMTPServer(refused={"refused@example.org"}) as server:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        assert receipts.receipts_send_due() == 2
        assert receipts.receipts_send_due() == 0  # the refused one is not retried forever
    assert sorted(recipients[0] for recipients, _message in server.accepted) == ["a@example.org", "b@example.org"]
    for donation in donations:
        donation.refresh_from_db()
        assert donation.receipt_sent_at is not None
    assert donations[1].receipt_error.startswith("failed: address refused (550")
    assert donations[0].receipt_error == donations[2].receipt_error == ""


def test_an_address_that_cannot_be_one_is_skipped_and_the_others_are_sent(campaign):
    good = pledges.pledge_create(campaign=campaign, provider="sandbox", amount_minor=2500, donor_email="ok@example.org")
    bad = pledges.pledge_create(campaign=campaign, provider="sandbox", amount_minor=2500, donor_email="x@example.org")
    Donation.objects.filter(pk=bad.pk).update(donor_email="not an address")  # imported data, say
    factories.confirm(bad.pk)
    factories.confirm(good.pk)
    assert receipts.receipts_send_due() == 1
    assert [m.to for m in mail.outbox] == [["ok@example.org"]]
    bad.refresh_from_db()
    assert bad.receipt_error == "skipped: not a valid e-mail address" and bad.receipt_sent_at is not None
