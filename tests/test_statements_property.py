"""Property: whatever statement files arrive, in any order, overlapping or imported twice, and
whenever matching runs, total = Σ ledger and each paid pledge is confirmed exactly once."""

from __future__ import annotations

from collections import Counter
from unittest import mock

import pytest
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.models import CampaignTotal, Donation, LedgerEntry, StatementLine
from campaigns.services import pledge_verification, pledges, reconcile, statements
from campaigns.services.statement_matching import statement_import_match
from tests.statement_files import Entry, camt053

pytestmark = pytest.mark.django_db


class _Rollback(Exception):
    pass


def _pool(references: list[str], amounts: list[int]) -> list[Entry]:
    """Per pledge: its payment, and a second different transfer carrying the same reference."""
    pool = []
    for reference, amount in zip(references, amounts, strict=True):
        euros = f"{amount // 100}.{amount % 100:02d}"
        pool.append(Entry(euros, reference.lower(), date="2026-11-20"))
        pool.append(Entry(euros, f"again {reference}", date="2026-11-21"))
    pool.append(Entry("9.99", "FRAIS", credit=False))
    pool.append(Entry("12.00", "DON SANS REFERENCE"))
    return pool


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amounts=st.lists(st.integers(min_value=200, max_value=50_000), min_size=1, max_size=3), data=st.data())
def test_any_files_in_any_order_keep_total_equal_to_ledger_and_confirm_each_pledge_once(campaign, amounts, data):
    try:
        with transaction.atomic():
            _run(campaign, amounts, data)
            raise _Rollback
    except _Rollback:
        pass


def _run(campaign, amounts, data) -> None:
    made = [pledges.pledge_create(campaign=campaign, provider="bank_transfer", amount_minor=amount,
                                  donor_email=f"d{i % 2}@example.org") for i, amount in enumerate(amounts)]
    for pledge in made:  # promises count as pending once their donor confirmed them
        pledge_verification.pledge_confirm_by_donor(token=pledge_verification.pledge_confirm_token(donation=pledge))
    pool = _pool([p.reference for p in made], amounts)
    files = data.draw(st.lists(st.lists(st.integers(0, len(pool) - 1), min_size=1, max_size=6), min_size=1,
                               max_size=4), label="files (indices into the pool)")
    order = data.draw(st.lists(st.integers(0, len(files) - 1), min_size=len(files), max_size=2 * len(files)),
                      label="imports, in order (a file may come twice)")
    match_now = data.draw(st.lists(st.booleans(), min_size=len(order), max_size=len(order)), label="match at once")
    # Small store batches: identical lines of one file fall in different batches.
    batch = data.draw(st.sampled_from([1, 2, 2000]), label="store batch")
    imported = []
    for step, (index, now) in enumerate(zip(order, match_now, strict=True)):
        with mock.patch.object(statements, "STORE_BATCH", batch):
            result = statements.statement_import(data=camt053([pool[i] for i in files[index]]),
                                                 file_name=f"{step}.xml", format="camt053")
        imported.append(result.statement_import.pk)
        if now:
            statement_import_match(import_id=result.statement_import.pk)
    for import_id in imported:  # the sweeper's pass: whatever is still pending
        statement_import_match(import_id=import_id)

    used = {i for index in set(order) for i in files[index]}
    # Each distinct line counts as often as it appears in the one file holding it most.
    expected_lines = sum(max(Counter(files[f])[i] for f in set(order)) for i in used)
    assert StatementLine.objects.count() == expected_lines
    assert not StatementLine.objects.filter(outcome=StatementLine.Outcome.PENDING).exists()
    paid = [p for n, p in enumerate(made) if 2 * n in used or 2 * n + 1 in used]
    total = CampaignTotal.objects.get(campaign=campaign)
    ledger_sum = LedgerEntry.objects.filter(campaign=campaign).aggregate(s=Sum("delta_minor"))["s"] or 0
    assert total.total_minor == ledger_sum == sum(p.amount_minor for p in paid)
    for pledge in made:
        entries = LedgerEntry.objects.filter(donation=pledge).count()
        assert entries == (1 if pledge in paid else 0)
        status = Donation.objects.get(pk=pledge.pk).status
        assert status == (Donation.Status.CONFIRMED if pledge in paid else Donation.Status.PENDING)
    assert total.pending_minor == sum(p.amount_minor for p in made if p not in paid)
    assert reconcile.totals_reconcile(slug=campaign.slug) == []
