"""Property: whatever the gifts, refunds, tax receipts and their order (duplicates, refunds before
their gift, a receipt before or after a refund), a campaign with a match keeps total = Σ ledger,
each gift matched at most once, the sponsor's money within its cap and within N × what is left of
each gift, reconcile clean, and the tax receipts gapless, one in force per gift with money left,
for the donor's money only (never the sponsor's).

Events go through the real webhook (HTTP, signature, storage) and the real intake service.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.models import CampaignTotal, Donation, LedgerEntry, PaymentEvent, TaxReceipt
from campaigns.services import intake, reconcile, tax_receipts
from campaigns.services.campaigns import campaign_save
from tests.factories import post_webhook, webhook_body
from tests.tax_receipt_helpers import assert_gapless, org_enable

pytestmark = pytest.mark.django_db


class _Rollback(Exception):
    pass


gift_plans = st.lists(
    st.fixed_dictionaries(
        {
            "amount": st.integers(min_value=1, max_value=10_000),
            "in_window": st.sampled_from([True, True, False]),
            "succeeds": st.sampled_from([True, True, True, False]),
            # Partial refunds as a percentage of the gift, sometimes more than what is left; each
            # may be announced twice.
            "refunds": st.lists(st.tuples(st.integers(min_value=1, max_value=120), st.booleans()), max_size=3),
            # The donor's tax receipt is asked for (with receipts on), somewhere in the order.
            "receipt": st.booleans(),
        }
    ),
    min_size=1,
    max_size=5,
)


def _events(plans: list[dict], inside: str, outside: str) -> list[bytes | int]:
    """The webhook bodies, and for each gift whose receipt is asked the gift's index."""
    events = []
    for i, plan in enumerate(plans):
        common = {"donation_id": f"don_{i}", "amount_minor": plan["amount"],
                  "donor": {"name": "", "email": f"donor{i}@example.org", "anonymous": False},
                  "occurred_at": inside if plan["in_window"] else outside}
        if plan["succeeds"]:
            events.append(webhook_body(event_id=f"evt_{i}_ok", **common))
        for j, (percent, again) in enumerate(plan["refunds"]):
            refund = max(1, plan["amount"] * percent // 100)
            for suffix in ("", "b") if again else ("",):
                events.append(webhook_body(event_id=f"evt_{i}_r{j}{suffix}", type="donation.refunded",
                                           refund_id=f"rf_{i}_{j}", **{**common, "amount_minor": refund}))
        if plan["receipt"]:
            events.append(i)
    return events


def _receipt_ask(campaign, index: int) -> None:
    """The donor gives a postal address and asks for the gift's receipt: issued if the gift counts."""
    gifts = Donation.objects.filter(campaign=campaign, external_id=f"don_{index}")
    gifts.update(donor_name="Marie Curie", donor_address="3 rue de l'Estrapade", donor_postal_code="75005",
                 donor_city="Paris")
    for gift in gifts:
        tax_receipts.tax_receipt_issue_quietly(donation=gift)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plans=gift_plans, ratio=st.integers(min_value=1, max_value=3),
       cap=st.one_of(st.integers(min_value=1, max_value=15_000), st.just(10**8)), data=st.data())
def test_any_order_of_gifts_refunds_and_matches_keeps_the_ledger_exact(client, campaign, plans, ratio, cap, data):
    now = timezone.now()
    inside, outside = now.isoformat(), (now - timedelta(days=30)).isoformat()
    events = _events(plans, inside, outside)
    order = data.draw(st.permutations(range(len(events))), label="delivery order")
    twice = data.draw(st.lists(st.booleans(), min_size=len(events), max_size=len(events)), label="duplicated")
    try:
        with transaction.atomic():
            campaign.match_ratio, campaign.match_cap_minor = ratio, cap
            campaign.match_starts_at, campaign.match_ends_at = now - timedelta(days=1), now + timedelta(days=1)
            campaign_save(campaign=campaign)
            org_enable()
            for index in order:
                if isinstance(events[index], int):
                    _receipt_ask(campaign, events[index])
                    continue
                assert post_webhook(client, events[index]).status_code == 202
                if twice[index]:
                    assert post_webhook(client, events[index]).status_code == 200
                stored = PaymentEvent.objects.latest("pk")
                intake.payment_event_process(event_id=stored.pk)
                if twice[index]:
                    intake.payment_event_process(event_id=stored.pk)
            _check(campaign, plans, ratio, cap)
            raise _Rollback
    except _Rollback:
        pass


def _check(campaign, plans, ratio, cap) -> None:
    assert not PaymentEvent.objects.filter(status=PaymentEvent.Status.FAILED).exists()
    total = CampaignTotal.objects.get(campaign=campaign)
    entries = LedgerEntry.objects.filter(campaign=campaign)
    matches = entries.filter(kind=LedgerEntry.Kind.MATCH)
    assert total.total_minor == (entries.aggregate(s=Sum("delta_minor"))["s"] or 0)
    assert total.matched_minor == (matches.aggregate(s=Sum("delta_minor"))["s"] or 0)
    assert 0 <= total.matched_minor <= cap
    # A gift matched at most once.
    assert not matches.filter(delta_minor__gt=0).values("donation").annotate(n=Count("pk")).filter(n__gt=1).exists()
    donors_money = 0
    uncapped = cap >= ratio * sum(plan["amount"] for plan in plans)
    for donation in Donation.objects.filter(campaign=campaign).annotate(
        own=Sum("ledger__delta_minor", filter=~Q(ledger__kind=LedgerEntry.Kind.MATCH)),
        sponsor=Sum("ledger__delta_minor", filter=Q(ledger__kind=LedgerEntry.Kind.MATCH)),
    ):
        plan = plans[int(donation.external_id.removeprefix("don_"))]
        left = donation.amount_minor - donation.refunded_minor if donation.status in ("confirmed", "refunded") else 0
        assert (donation.own or 0) == donation.balance_minor == left
        assert (donation.sponsor or 0) == donation.matched_minor
        # The sponsor's money follows what is left of the gift, and only for gifts in the window.
        assert donation.matched_minor <= ratio * left
        if not plan["in_window"] or left == 0:
            assert donation.matched_minor == 0
        elif uncapped:
            assert donation.matched_minor == ratio * left
        donors_money += left
    assert total.total_minor == donors_money + total.matched_minor
    assert reconcile.totals_reconcile(slug=campaign.slug) == []
    # Tax receipts: gapless, and the one in force of each gift is the donor's money left, no more.
    for year in set(TaxReceipt.objects.values_list("year", flat=True)):
        assert_gapless(year)
    for receipt in TaxReceipt.objects.filter(cancelled_at__isnull=True):
        assert receipt.amount_minor == receipt.donation.balance_minor > 0
    assert not TaxReceipt.objects.filter(cancelled_at__isnull=True).values("donation").annotate(
        n=Count("pk")).filter(n__gt=1).exists()
