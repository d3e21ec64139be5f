"""Property: whatever the order of gifts, receipts, refunds, corrections and yearly runs, each
year's receipt numbers are exactly 1..N, at most one receipt is in force per gift (per donor and
year for monthly gifts), and every receipt in force says what the ledger holds now."""

from __future__ import annotations

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.models import Donation, TaxReceipt
from campaigns.services import tax_receipts
from campaigns.services.ledger import LedgerError
from campaigns.services.tax_receipts import TaxReceiptError
from tests import factories
from tests.tax_receipt_helpers import assert_gapless, gift, local, org_enable

pytestmark = pytest.mark.django_db
YEARS = (2025, 2026)


class _Rollback(Exception):
    pass


operations = st.lists(
    st.one_of(
        st.tuples(st.just("gift"), st.integers(1, 20_000), st.sampled_from(YEARS), st.booleans(), st.integers(0, 2)),
        st.tuples(st.just("issue"), st.integers(0, 9)),
        st.tuples(st.just("refund"), st.integers(0, 9), st.integers(1, 25_000)),
        st.tuples(st.just("correct"), st.integers(0, 9), st.integers(-5_000, 5_000).filter(bool)),
        st.tuples(st.just("run"), st.sampled_from(YEARS)),
    ),
    min_size=1, max_size=14,
)


def _apply(campaign, op, donations: list[Donation]) -> None:
    kind = op[0]
    if kind == "gift":
        _kind, amount, year, monthly, donor = op
        donations.append(gift(campaign, amount, at=local(year, 1 + len(donations) % 12), monthly=monthly,
                              email=f"donor{donor}@example.org", name=f"Donor {donor}"))
        return
    if kind == "run":
        run = tax_receipts.tax_receipt_run_start(year=op[1])
        assert tax_receipts.tax_receipt_run_step(run_id=run.pk, batch_size=2) is True
        return
    if not donations:
        return
    donation = donations[op[1] % len(donations)]
    try:
        if kind == "issue":
            tax_receipts.tax_receipt_issue_for_gift(donation_id=donation.pk)
        elif kind == "refund":
            factories.refund(donation.pk, amount_minor=op[2])
        else:
            factories.correct(donation.pk, delta_minor=op[2], note="property")
    except (TaxReceiptError, LedgerError):
        pass  # refused: monthly gift, nothing left, below zero… (and nothing changed)


def _check() -> None:
    for year in YEARS:
        assert_gapless(year)
    for receipt in TaxReceipt.objects.active().prefetch_related("lines__donation"):
        lines = list(receipt.lines.all())
        assert lines and receipt.amount_minor == sum(line.amount_minor for line in lines)
        for line in lines:
            assert line.amount_minor == line.donation.balance_minor > 0
    gifts = list(TaxReceipt.objects.active().filter(kind="gift").values_list("donation_id", flat=True))
    assert len(gifts) == len(set(gifts))
    yearly = list(TaxReceipt.objects.active().filter(kind="yearly").values_list("donor_key", "year"))
    assert len(yearly) == len(set(yearly))
    # A cancelled receipt is never lost and is replaced at most once.
    for receipt in TaxReceipt.objects.exclude(replaces=None):
        assert receipt.replaces.cancelled_at is not None


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_any_order_of_gifts_refunds_and_runs_keeps_each_years_sequence_gapless(campaign, ops):
    org_enable()
    try:
        with transaction.atomic():
            donations: list[Donation] = []
            for op in ops:
                _apply(campaign, op, donations)
            _check()
            raise _Rollback
    except _Rollback:
        pass
