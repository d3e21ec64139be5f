"""The contract's demo campaign, open from today for 30 days, 20 077,00 € of 25 000,00 €."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from campaigns import money
from campaigns.models import Campaign, Donation
from campaigns.services import ledger
from campaigns.services.campaigns import campaign_upsert

DEMO_SLUG = "mai-juin-2023"
DEMO_TOTAL_MINOR = 2_007_700
DEMO_DONATIONS = 455
DEMO_DONORS = 412
_AMOUNT_CYCLE = (2000, 3000, 5000, 2500, 10000, 1500, 4000, 6000)
_FIRST_NAMES = ("Marie", "Jean", "Camille", "Louis", "Chloé", "Hugo", "Léa", "Paul", "Inès", "Nathan")


def demo_amounts() -> list[int]:
    """455 gifts summing to exactly 20 077,00 €: a regular cycle and one large last gift."""
    amounts = [_AMOUNT_CYCLE[i % len(_AMOUNT_CYCLE)] for i in range(DEMO_DONATIONS - 1)]
    amounts.append(DEMO_TOTAL_MINOR - sum(amounts))
    assert amounts[-1] > 0 and sum(amounts) == DEMO_TOTAL_MINOR
    return amounts


class Command(BaseCommand):
    help = "Create (idempotently) the demo campaign mai-juin-2023 with 20 077,00 € confirmed."

    def handle(self, *args, **options) -> None:
        today = timezone.localdate()
        starts = timezone.make_aware(datetime.combine(today, time.min))
        campaign, created = campaign_upsert(
            slug=DEMO_SLUG,
            defaults={
                "title": "Campagne de dons Mai-Juin 2023",
                "appeal": (
                    "Notre journal ne vit que de vos dons : pas de publicité, pas d'actionnaire. "
                    "Aidez-nous à financer une année d'enquêtes indépendantes."
                ),
                "goal_minor": 2_500_000,
                "currency": "EUR",
                "starts_at": starts,
                "ends_at": starts + timedelta(days=30, seconds=-1),
                "status": Campaign.Status.ACTIVE,
                "locale": "fr",
                # English readers (`?lang=en`, `data-lang="en"`) see the campaign in English.
                "translations": {"en": {
                    "title": "Fundraising campaign May-June 2023",
                    "appeal": (
                        "Our newspaper lives on your gifts alone: no advertising, no shareholders. "
                        "Help us fund a year of independent investigations."
                    ),
                }},
                "featured": True,
                "preset_amounts_minor": [1000, 2500, 5000, 10000],
            },
        )
        made = 0
        demo = Donation.objects.filter(campaign=campaign, source=Donation.Source.DEMO)
        already = set(demo.values_list("external_id", flat=True))
        with transaction.atomic():
            for i, amount in enumerate(demo_amounts()):
                if f"demo-{i:04d}" in already:
                    continue  # idempotent, and a re-run costs one query instead of 455 ledger calls
                donor = i % DEMO_DONORS
                name = _FIRST_NAMES[donor % len(_FIRST_NAMES)]
                _, new = ledger.donation_record(
                    campaign=campaign,
                    source=Donation.Source.DEMO,
                    external_id=f"demo-{i:04d}",
                    amount_minor=amount,
                    donor_name=name,
                    donor_email=f"donateur{donor:03d}@example.org",
                    anonymous=i % 7 == 0,
                    at=starts,
                )
                made += new
        campaign.refresh_from_db()
        total = campaign.totals
        self.stdout.write(
            f"{'Created' if created else 'Updated'} {campaign.slug} ({made} new donations): "
            f"{money.format_money(total.total_minor, campaign.currency, 'fr')} sur un objectif de "
            f"{money.format_money(campaign.goal_minor, campaign.currency, 'fr')}, "
            f"open until {timezone.localtime(campaign.ends_at):%Y-%m-%d}."
        )
