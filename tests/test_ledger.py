"""The ledger's counting rules: who counts as a donor, what a refund may take after a correction."""

from __future__ import annotations

import pytest

from campaigns.models import Donation, PaymentEvent
from campaigns.services.reconcile import campaign_reconcile
from tests import factories
from tests.factories import post_webhook, webhook_body

pytestmark = pytest.mark.django_db








def test_a_donor_whose_only_gift_was_corrected_to_zero_counts_again_when_giving_anew(campaign):
    first = factories.record(campaign, "cheque:1", 2000, "marie@example.org")
    factories.correct(first.pk, delta_minor=-2000, note="cheque bounced")
    assert factories.counter(campaign).donor_count == 0

    factories.record(campaign, "cheque:2", 3000, "marie@example.org")

    counter = factories.counter(campaign)
    assert (counter.total_minor, counter.donation_count, counter.donor_count) == (3000, 1, 1)
    assert campaign_reconcile(campaign=campaign) == []


def test_a_refunded_gift_brought_back_by_a_correction_keeps_its_donor_counted_once(campaign):
    first = factories.record(campaign, "cheque:1", 2000, "marie@example.org")
    factories.refund(first.pk)
    factories.correct(first.pk, delta_minor=500, note="refund partly reversed")
    factories.record(campaign, "cheque:2", 3000, "marie@example.org")

    counter = factories.counter(campaign)
    assert (counter.total_minor, counter.donation_count, counter.donor_count) == (3500, 2, 1)
    assert campaign_reconcile(campaign=campaign) == []






def test_a_full_refund_after_a_fee_correction_refunds_what_the_ledger_holds(campaign):
    donation = factories.record(campaign, "transfer:1", 2000, "marie@example.org")
    factories.correct(donation.pk, delta_minor=-500, note="bank fee")

    assert factories.refund(donation.pk) == 1500

    donation.refresh_from_db()
    assert donation.status == Donation.Status.REFUNDED
    counter = factories.counter(campaign)
    assert (counter.total_minor, counter.donation_count, counter.donor_count) == (0, 0, 0)
    assert campaign_reconcile(campaign=campaign) == []


def test_a_provider_refund_of_a_fee_corrected_gift_is_applied_not_failed(client, campaign):

    post_webhook(client, webhook_body(event_id="evt_ok", donation_id="don_1", amount_minor=2000))
    factories.process_all()
    donation = Donation.objects.get(external_id="don_1")
    factories.correct(donation.pk, delta_minor=-300, note="bank fee")
    post_webhook(client, webhook_body(event_id="evt_rf", type="donation.refunded", donation_id="don_1",
                                      amount_minor=2000))
    factories.process_all()

    assert PaymentEvent.objects.get(event_id="evt_rf").status == PaymentEvent.Status.PROCESSED
    assert factories.counter(campaign).total_minor == 0
    assert campaign_reconcile(campaign=campaign) == []
















