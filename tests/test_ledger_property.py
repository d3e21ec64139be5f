"""Property: whatever the events, their duplicates and their order, the ledger and the counter agree.

Events go through the real webhook (HTTP, signature, storage) and the real intake service, each
delivered and processed once or twice, in any order (a refund may come before its success), and
a refund may be announced by two events carrying the same provider refund id.
"""

from __future__ import annotations

import pytest
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.models import CampaignTotal, Donation, LedgerEntry, PaymentEvent
from campaigns.services import intake, reconcile
from tests.factories import post_webhook, webhook_body

pytestmark = pytest.mark.django_db


class _Rollback(Exception):
    pass


donation_plans = st.lists(
    st.fixed_dictionaries(
        {
            "amount": st.integers(min_value=1, max_value=10_000),
            "donor": st.integers(min_value=0, max_value=2),
            "succeeds": st.booleans(),
            "fails": st.booleans(),
            # Partial refunds, and sometimes more than what is left (capped by the ledger); each
            # has its provider refund id, and may be announced by a second event (counted once).
            "refunds": st.lists(st.tuples(st.integers(min_value=1, max_value=12_000), st.booleans()), max_size=3),
        }
    ),
    min_size=1,
    max_size=4,
)


def _expected(plans: list[dict]) -> dict[str, int]:
    net = []
    for plan in plans:
        if plan["succeeds"]:
            refunded = sum(amount for amount, _again in plan["refunds"])
            net.append((plan, plan["amount"] - min(plan["amount"], refunded)))
    counted = [plan for plan, value in net if value > 0]
    return {
        "total_minor": sum(value for _, value in net),
        "donation_count": len(counted),
        "donor_count": len({plan["donor"] for plan in counted}),
    }


def _events(plans: list[dict]) -> list[bytes]:
    events = []
    for i, plan in enumerate(plans):
        common = {
            "donation_id": f"don_{i}",
            "amount_minor": plan["amount"],
            "donor": {"name": "", "email": f"donor{plan['donor']}@example.org", "anonymous": False},
        }
        if plan["succeeds"]:
            events.append(webhook_body(event_id=f"evt_{i}_ok", **common))
        if plan["fails"]:
            events.append(webhook_body(event_id=f"evt_{i}_ko", type="donation.failed", **common))
        for j, (refund, again) in enumerate(plan["refunds"]):
            for suffix in ("", "b") if again else ("",):
                events.append(webhook_body(event_id=f"evt_{i}_r{j}{suffix}", type="donation.refunded",
                                           refund_id=f"rf_{i}_{j}", **{**common, "amount_minor": refund}))
    return events


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plans=donation_plans, data=st.data())
def test_any_event_sequence_leaves_total_equal_to_ledger_and_confirmed_minus_refunded(client, campaign, plans, data):
    events = _events(plans)
    order = data.draw(st.permutations(range(len(events))), label="delivery order")
    twice = data.draw(st.lists(st.booleans(), min_size=len(events), max_size=len(events)), label="duplicated")
    try:
        with transaction.atomic():
            _deliver_and_check(client, campaign, plans, [events[i] for i in order], [twice[i] for i in order])
            raise _Rollback
    except _Rollback:
        pass


def _deliver_and_check(client, campaign, plans, events, twice):
    for body, duplicate in zip(events, twice, strict=True):
        assert post_webhook(client, body).status_code == 202
        if duplicate:
            assert post_webhook(client, body).status_code == 200
        stored = PaymentEvent.objects.latest("pk")
        intake.payment_event_process(event_id=stored.pk)
        if duplicate:
            intake.payment_event_process(event_id=stored.pk)
    assert PaymentEvent.objects.count() == len(events)
    assert not PaymentEvent.objects.filter(status=PaymentEvent.Status.FAILED).exists()

    expected = _expected(plans)
    total = CampaignTotal.objects.get(campaign=campaign)
    ledger_sum = LedgerEntry.objects.filter(campaign=campaign).aggregate(s=Sum("delta_minor"))["s"] or 0
    donations = Donation.objects.filter(campaign=campaign)
    confirmed = donations.filter(status__in=[Donation.Status.CONFIRMED, Donation.Status.REFUNDED])
    confirmed_minus_refunded = sum(d.amount_minor - d.refunded_minor for d in confirmed)

    assert total.total_minor == ledger_sum == confirmed_minus_refunded == expected["total_minor"]
    assert total.donation_count == expected["donation_count"]
    assert total.donor_count == expected["donor_count"]
    assert total.pending_minor == 0
    for donation in donations:  # each donation's balance is the sum of its own entries
        assert donation.balance_minor == (donation.ledger.aggregate(s=Sum("delta_minor"))["s"] or 0)
    assert reconcile.totals_reconcile(slug=campaign.slug) == []
    # Refunds of donations that never succeeded wait; nothing else is left behind.
    waiting = PaymentEvent.objects.filter(status=PaymentEvent.Status.DEFERRED).count()
    assert waiting == sum(1 + again for plan in plans if not plan["succeeds"] for _amount, again in plan["refunds"])
    # Each provider refund id is in the ledger at most once.
    ids = list(LedgerEntry.objects.exclude(refund_id="").values_list("donation_id", "refund_id"))
    assert len(ids) == len(set(ids))
