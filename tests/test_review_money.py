"""Money-correctness review: each test pins a defect found in review (and fixed)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from campaigns.models import CampaignTotal, Donation, PaymentEvent
from campaigns.services import intake, ledger, pledges
from campaigns.services.reconcile import campaign_reconcile
from tests.conftest import post_webhook, webhook_body
from tests.test_stripe import WEBHOOK_SECRET, post_stripe, session_completed, stripe_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def _stripe_settings(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_jauge"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.PAYMENT_PROVIDERS = ["stripe", "sandbox"]


def _counter(campaign) -> CampaignTotal:
    return CampaignTotal.objects.get(campaign=campaign)


def _record(campaign, external_id: str, amount_minor: int, email: str) -> Donation:
    donation, _ = ledger.donation_record(
        campaign=campaign, source=Donation.Source.MANUAL, external_id=external_id,
        amount_minor=amount_minor, at=timezone.now(), donor_email=email,
    )
    return donation


def test_a_donor_whose_only_gift_was_corrected_to_zero_counts_again_when_giving_anew(campaign):
    first = _record(campaign, "cheque:1", 2000, "marie@example.org")
    ledger.donation_correct(donation_id=first.pk, delta_minor=-2000, note="cheque bounced")
    assert _counter(campaign).donor_count == 0

    _record(campaign, "cheque:2", 3000, "marie@example.org")

    counter = _counter(campaign)
    assert (counter.total_minor, counter.donation_count, counter.donor_count) == (3000, 1, 1)
    assert campaign_reconcile(campaign=campaign) == []


def test_a_refunded_gift_brought_back_by_a_correction_keeps_its_donor_counted_once(campaign):
    first = _record(campaign, "cheque:1", 2000, "marie@example.org")
    ledger.donation_refund(donation_id=first.pk)
    ledger.donation_correct(donation_id=first.pk, delta_minor=500, note="refund partly reversed")
    _record(campaign, "cheque:2", 3000, "marie@example.org")

    counter = _counter(campaign)
    assert (counter.total_minor, counter.donation_count, counter.donor_count) == (3500, 2, 1)
    assert campaign_reconcile(campaign=campaign) == []


def _process_all() -> None:
    for event_id in PaymentEvent.objects.filter(status="received").order_by("pk").values_list("pk", flat=True):
        intake.payment_event_process(event_id=event_id)


@pytest.mark.usefixtures("_stripe_settings")
def test_a_stripe_refund_delivered_before_its_checkout_applies_once_the_checkout_arrives(client, campaign):
    pledge = pledges.pledge_create(campaign=campaign, provider="stripe", amount_minor=2500)
    refund = {"id": "re_1", "object": "refund", "payment_intent": "pi_1", "charge": "ch_1", "currency": "eur",
              "amount": 1000, "status": "succeeded",
              "metadata": {"reference": pledge.reference, "campaign": campaign.slug}}
    post_stripe(client, stripe_event("evt_rf_1", "refund.created", refund))
    _process_all()
    assert PaymentEvent.objects.get(event_id="evt_rf_1").status == PaymentEvent.Status.DEFERRED

    post_stripe(client, session_completed(pledge, pi="pi_1"))
    _process_all()

    assert PaymentEvent.objects.get(event_id="evt_rf_1").status == PaymentEvent.Status.PROCESSED
    assert _counter(campaign).total_minor == 1500
    assert campaign_reconcile(campaign=campaign) == []


def test_a_full_refund_after_a_fee_correction_refunds_what_the_ledger_holds(campaign):
    donation = _record(campaign, "transfer:1", 2000, "marie@example.org")
    ledger.donation_correct(donation_id=donation.pk, delta_minor=-500, note="bank fee")

    assert ledger.donation_refund(donation_id=donation.pk) == 1500

    donation.refresh_from_db()
    assert donation.status == Donation.Status.REFUNDED
    counter = _counter(campaign)
    assert (counter.total_minor, counter.donation_count, counter.donor_count) == (0, 0, 0)
    assert campaign_reconcile(campaign=campaign) == []


def test_a_provider_refund_of_a_fee_corrected_gift_is_applied_not_failed(client, campaign):

    post_webhook(client, webhook_body(event_id="evt_ok", donation_id="don_1", amount_minor=2000))
    _process_all()
    donation = Donation.objects.get(external_id="don_1")
    ledger.donation_correct(donation_id=donation.pk, delta_minor=-300, note="bank fee")
    post_webhook(client, webhook_body(event_id="evt_rf", type="donation.refunded", donation_id="don_1",
                                      amount_minor=2000))
    _process_all()

    assert PaymentEvent.objects.get(event_id="evt_rf").status == PaymentEvent.Status.PROCESSED
    assert _counter(campaign).total_minor == 0
    assert campaign_reconcile(campaign=campaign) == []


class _Eraser:
    """donor_erase in a thread of its own; `blocked` once it found a lock taken and let go."""

    def __init__(self, monkeypatch, donation_id: int):
        import threading

        from campaigns.services import gdpr

        self.attempts: list[int] = []
        self.errors: list[BaseException] = []
        self.done = threading.Event()
        pause = gdpr._lock_retry_pause
        monkeypatch.setattr(gdpr, "_lock_retry_pause", lambda attempt: (self.attempts.append(attempt), pause(0)))
        self.thread = threading.Thread(target=self._run, args=(donation_id,))

    def _run(self, donation_id: int) -> None:
        from django.db import connections

        from campaigns.services.gdpr import donor_erase

        try:
            donor_erase(actor=None, donation_id=donation_id, reason="demande du donateur")
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            connections.close_all()
            self.done.set()

    def start_and_wait_until_blocked_or_done(self) -> None:
        from tests.worker import wait_until

        self.thread.start()
        wait_until(lambda: self.attempts or self.done.is_set(), timeout=60, message="the erasure to try")


@pytest.mark.postgres
def test_an_erasure_waits_for_an_event_being_processed_without_holding_its_donation(
    transactional_db, campaign, monkeypatch
):
    """A worker holds an event and goes on to the counter and the donation: an erasure that
    held the donation while waiting for that event would deadlock with it."""
    from django.db import DatabaseError, transaction

    client = Client()
    post_webhook(client, webhook_body(event_id="evt_ok", donation_id="don_1"))
    _process_all()
    post_webhook(client, webhook_body(event_id="evt_rf", type="donation.refunded", donation_id="don_1",
                                      amount_minor=500))
    donation = Donation.objects.get(external_id="don_1")
    eraser = _Eraser(monkeypatch, donation.pk)

    with transaction.atomic():
        PaymentEvent.objects.select_for_update().get(event_id="evt_rf")  # the worker's claim
        eraser.start_and_wait_until_blocked_or_done()
        try:
            Donation.objects.select_for_update(nowait=True).get(pk=donation.pk)  # the worker's next lock
            donation_free = True
        except DatabaseError:
            donation_free = False
    eraser.thread.join()

    assert donation_free, "the erasure held the donation while waiting for the event"
    assert not eraser.errors, eraser.errors
    donation.refresh_from_db()
    assert donation.donor_email == ""


@pytest.mark.postgres
def test_an_erasure_does_not_hold_a_deferred_refund_a_confirming_worker_needs(transactional_db, campaign, monkeypatch):
    """The worker confirming a donation holds its event, the counter and the donation, then
    takes the donation's deferred refund events: the erasure must not sit on one of them."""
    from django.db import DatabaseError, connection, transaction

    client = Client()
    post_webhook(client, webhook_body(event_id="evt_rf", type="donation.refunded", donation_id="don_1",
                                      amount_minor=500))
    post_webhook(client, webhook_body(event_id="evt_fail", type="donation.failed", donation_id="don_1"))
    _process_all()
    assert PaymentEvent.objects.get(event_id="evt_rf").status == PaymentEvent.Status.DEFERRED
    donation = Donation.objects.get(external_id="don_1")
    eraser = _Eraser(monkeypatch, donation.pk)

    with transaction.atomic():
        ledger.total_lock(campaign_id=campaign.pk)  # the confirming worker's counter lock
        eraser.start_and_wait_until_blocked_or_done()
        # Not NOWAIT: each of the erasure's attempts may hold the event for a millisecond
        # before it lets go; what must never happen is holding it while waiting for us (a
        # deadlock: the timeout is under PostgreSQL's 1 s deadlock check, so we see it first).
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '500ms'")
        try:
            list(PaymentEvent.objects.select_for_update().filter(status=PaymentEvent.Status.DEFERRED))
            deferred_free = True
        except DatabaseError:
            deferred_free = False
    eraser.thread.join()

    assert deferred_free, "the erasure held a deferred refund while waiting for the counter"
    assert not eraser.errors, eraser.errors


@pytest.mark.postgres
def test_an_erasure_during_a_gift_of_the_same_donor_leaves_no_donor_drift(transactional_db, campaign, monkeypatch):
    """The donor check of a new gift (under the campaign's lock) and the erasure's new donor key
    must not interleave: the erasure takes the campaign's lock too."""
    from django.db import transaction

    first = _record(campaign, "cheque:1", 2000, "marie@example.org")
    eraser = _Eraser(monkeypatch, first.pk)

    with transaction.atomic():
        # A worker is recording the same donor's second gift: its donor check has run.
        total = ledger.total_lock(campaign_id=campaign.pk)
        ledger.donation_insert_confirmed_locked(
            total=total, campaign=campaign, amount_minor=3000, at=timezone.now(),
            source=Donation.Source.GENERIC, external_id="don_2", currency="EUR", donor_email="marie@example.org",
        )
        eraser.start_and_wait_until_blocked_or_done()
    eraser.thread.join()

    assert not eraser.errors, eraser.errors
    assert _counter(campaign).donor_count == 1
    assert campaign_reconcile(campaign=campaign) == []


def _dispute(event_id: str, event_type: str, pledge: Donation, *, status: str = "needs_response",
             amount: int = 2500) -> bytes:
    return stripe_event(event_id, event_type, {
        "id": "dp_1", "object": "dispute", "charge": "ch_1", "payment_intent": "pi_1", "amount": amount,
        "currency": "eur", "metadata": {}, "status": status})


@pytest.mark.usefixtures("_stripe_settings")
def test_a_won_dispute_gives_the_money_back_and_its_withdrawal_counts_once(client, campaign):
    pledge = pledges.pledge_create(campaign=campaign, provider="stripe", amount_minor=2500)
    post_stripe(client, session_completed(pledge, pi="pi_1"))
    _process_all()
    # Stripe announces the dispute and the withdrawal of its funds: one movement of money.
    post_stripe(client, _dispute("evt_dp_created", "charge.dispute.created", pledge))
    post_stripe(client, _dispute("evt_dp_withdrawn", "charge.dispute.funds_withdrawn", pledge))
    _process_all()
    assert _counter(campaign).total_minor == 0

    post_stripe(client, _dispute("evt_dp_won", "charge.dispute.funds_reinstated", pledge, status="won"))
    post_stripe(client, _dispute("evt_dp_won_again", "charge.dispute.funds_reinstated", pledge, status="won"))
    _process_all()

    pledge.refresh_from_db()
    assert pledge.status == Donation.Status.CONFIRMED
    counter = _counter(campaign)
    assert (counter.total_minor, counter.donation_count, counter.donor_count) == (2500, 1, 1)
    assert campaign_reconcile(campaign=campaign) == []


@pytest.mark.usefixtures("_stripe_settings")
def test_a_dispute_inquiry_moves_no_money_until_its_funds_are_withdrawn(client, campaign):
    pledge = pledges.pledge_create(campaign=campaign, provider="stripe", amount_minor=2500)
    post_stripe(client, session_completed(pledge, pi="pi_1"))
    post_stripe(client, _dispute("evt_inq", "charge.dispute.created", pledge, status="warning_needs_response"))
    _process_all()
    assert _counter(campaign).total_minor == 2500

    post_stripe(client, _dispute("evt_esc", "charge.dispute.funds_withdrawn", pledge))
    _process_all()
    assert _counter(campaign).total_minor == 0


def test_a_failure_naming_another_campaign_is_flagged_and_leaves_the_pledge_alone(client, campaign):
    from campaigns.services.campaigns import campaign_upsert

    campaign_upsert(slug="autre", defaults={
        "title": "Autre", "goal_minor": 1000, "currency": "EUR", "starts_at": campaign.starts_at,
        "ends_at": campaign.ends_at, "status": campaign.status})
    pledge = pledges.pledge_create(campaign=campaign, provider="sandbox", amount_minor=2500)
    post_webhook(client, webhook_body(event_id="evt_f", type="donation.failed", donation_id=pledge.reference,
                                      campaign="autre", reference=pledge.reference))
    _process_all()

    event = PaymentEvent.objects.get(event_id="evt_f")
    assert event.status == PaymentEvent.Status.FAILED
    assert "another campaign" in event.last_error
    pledge.refresh_from_db()
    assert pledge.status == Donation.Status.PENDING
