"""Helpers the tests share: money moves by donation id, webhook bodies, signed posts.

Imported by the tests that use them (never through conftest.py, which only holds fixtures).
"""

from __future__ import annotations

from campaigns.models import Donation, LedgerEntry
from campaigns.services import ledger


def confirm(donation_id: int, **options) -> Donation:
    with ledger.donation_locked(donation_id=donation_id) as (total, donation):
        return ledger.donation_confirm(total=total, donation=donation, **options)


def refund(donation_id: int, **options) -> int:
    with ledger.donation_locked(donation_id=donation_id) as (total, donation):
        return ledger.donation_refund(total=total, donation=donation, **options)


def correct(donation_id: int, **options) -> LedgerEntry:
    with ledger.donation_locked(donation_id=donation_id) as (total, donation):
        return ledger.donation_correct(total=total, donation=donation, **options)


def fail(donation_id: int, **options) -> Donation:
    with ledger.donation_locked(donation_id=donation_id) as (total, donation):
        return ledger.donation_fail(total=total, donation=donation, **options)
