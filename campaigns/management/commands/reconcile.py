"""Recompute totals from the ledger; exit 1 on drift unless --fix repairs it."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from campaigns.models import Campaign
from campaigns.services import reconcile


class Command(BaseCommand):
    help = "Recompute campaign totals from the ledger and report (or --fix) any drift."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--campaign", metavar="SLUG", help="only this campaign")
        parser.add_argument("--fix", action="store_true", help="repair drifted counters")

    def handle(self, *args, campaign: str | None = None, fix: bool = False, **options) -> None:
        if campaign and not Campaign.objects.filter(slug=campaign).exists():
            raise CommandError(f"unknown campaign {campaign!r}")
        drifts = reconcile.totals_reconcile(slug=campaign, fix=fix)
        checked = Campaign.objects.filter(slug=campaign).count() if campaign else Campaign.objects.count()
        for drift in drifts:
            self.stdout.write(f"DRIFT {drift}")
        if not drifts:
            self.stdout.write(f"OK: {checked} campaign(s) match the ledger.")
        elif fix:
            left = [drift for drift in drifts if not drift.repairable]
            self.stdout.write(f"FIXED: {len(drifts) - len(left)} counter(s) repaired from the ledger.")
            if left:
                raise CommandError(f"{len(left)} problem(s) in the ledger itself (a gift matched twice?): "
                                   "an editor must correct them.")
        else:
            raise CommandError(f"{len(drifts)} counter(s) drifted from the ledger; run with --fix to repair.")
