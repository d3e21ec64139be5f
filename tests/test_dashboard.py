"""The dashboard's numbers are the ledger's, for a generated campaign history; its live parts
are real pictures (SVG) and follow the Redis progress channel."""

from __future__ import annotations

import json
import random
import re
import uuid
from collections import Counter, defaultdict
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Sum
from django.test import Client
from django.utils import timezone

from campaigns.models import CampaignTotal, Donation, LedgerEntry
from campaigns.selectors.dashboard import dashboard_data
from campaigns.services import ledger
from campaigns.services.campaigns import campaign_upsert
from campaigns.services.reconcile import totals_compute
from tests import factories
from tests.staff_world import staff_world

ARTICLES = [f"https://www.exemple.fr/article-{n}" for n in range(5)] + [""]
SOURCES = [Donation.Source.GENERIC, Donation.Source.MANUAL, Donation.Source.STRIPE, Donation.Source.BANK]


def _generate_history(campaign, *, seed: int, count: int = 120) -> None:
    """Gifts from several sources and articles, pending pledges, refunds and corrections,
    booked over the campaign's days."""
    rng = random.Random(seed)
    for n in range(count):
        source = rng.choice(SOURCES)
        donation, _ = ledger.donation_create(
            campaign=campaign, source=source, external_id=f"gen-{seed}-{n}",
            amount_minor=rng.choice([500, 1000, 2500, 5000, rng.randint(100, 99_999)]), currency="EUR",
            donor_email=f"donor{rng.randint(0, 40)}@example.org", article_url=rng.choice(ARTICLES),
        )
        if rng.random() < 0.1:
            continue  # stays a pending pledge
        factories.confirm(donation.pk)
        roll = rng.random()
        if roll < 0.1:
            factories.refund(donation.pk)
        elif roll < 0.2:
            factories.refund(donation.pk, amount_minor=rng.randint(1, donation.amount_minor))
        elif roll < 0.25:
            factories.correct(donation.pk, delta_minor=rng.randint(-50, 500), note="gen")
    # The ledger is append-only through the ORM; spreading the booking dates over the campaign
    # is test set-up of a history, done in SQL.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE campaigns_ledgerentry SET created_at = created_at - (id %% 9) * interval '1 day' + "
            "(id %% 7) * interval '3 hours' WHERE campaign_id = %s", [campaign.pk])


@pytest.mark.parametrize("seed", [1, 2])
def test_dashboard_numbers_equal_the_ledger_for_a_generated_history(campaign, seed):
    _generate_history(campaign, seed=seed)
    entries = list(LedgerEntry.objects.filter(campaign=campaign).select_related("donation"))
    ledger_total = sum(e.delta_minor for e in entries)
    d = dashboard_data(campaign_id=campaign.pk)

    assert d.total_minor == ledger_total == CampaignTotal.objects.get(campaign=campaign).total_minor
    assert d.counter_total_minor == ledger_total
    by_day: dict = defaultdict(int)
    by_source: Counter = Counter()
    by_article: Counter = Counter()
    for e in entries:
        by_day[timezone.localtime(e.created_at).date()] += e.delta_minor
        by_source[e.donation.source] += e.delta_minor
        if e.donation.article_url:
            by_article[e.donation.article_url] += e.delta_minor
    assert dict(d.by_day) == dict(by_day) and len(by_day) > 3
    assert sum(amount for _, amount in d.by_day) == ledger_total
    assert {row["source"]: row["amount_minor"] for row in d.by_source} == dict(by_source)
    assert {row["url"]: row["amount_minor"] for row in d.top_articles} == {
        url: amount for url, amount in by_article.items() if amount > 0}
    assert d.charts["cumulative"]["total_minor"] == ledger_total
    computed = totals_compute(campaign_id=campaign.pk)
    assert (d.donations, d.donors, d.pending_minor) == (
        computed["donation_count"], computed["donor_count"], computed["pending_minor"])
    # Pace and projection follow from those numbers.
    assert d.needed_per_day_minor * d.days_left >= campaign.goal_minor - ledger_total
    assert d.projection_minor >= ledger_total


def test_the_live_fragment_draws_svg_charts_and_the_formatted_total(campaign):
    ledger.donation_record(campaign=campaign, source=Donation.Source.MANUAL, external_id="cheque:1",
                           amount_minor=123_456, donor_name="Émile", article_url="https://www.exemple.fr/a")
    client = Client()
    client.force_login(staff_world()["editor"])
    page = client.get(f"/dashboard/{campaign.slug}/").content.decode()
    assert 'hx-get="/dashboard/test-campaign/live/"' in page
    assert 'sse-connect="/dashboard/test-campaign/events/"' in page
    assert "campaigns/vendor/htmx-ext-sse.min.js" in page and "vendor/htmx.min.js" in page
    live = client.get(f"/dashboard/{campaign.slug}/live/", headers={"HX-Request": "true"})
    html = live.content.decode()
    assert live["Vary"] and "HX-Request" in live["Vary"]
    assert "<html" not in html
    assert html.count("<svg") == 3 and "<polyline" in html and 'class="pace"' in html
    assert 'data-total-minor="123456"' in html
    # Coordinates keep a decimal point in every locale (a French "12,5" breaks the drawing).
    assert not re.search(r'\b(?:x|y|x1|x2|y1|y2|width|height|cx|cy)="-?\d+,\d', html)
    assert "1\u202f234,56\u00a0€" in html
    assert "Émile" in html and "https://www.exemple.fr/a" in html
    assert LedgerEntry.objects.aggregate(s=Sum("delta_minor"))["s"] == 123_456


@pytest.mark.redis
def test_the_event_stream_sends_each_committed_change_of_the_campaign(db, settings):
    from campaigns.services.progress import progress_publish
    from campaigns.views.dashboard import _sse_stream

    # Pub/sub channels are server-wide (not per Redis db): a slug of this run's own.
    now = timezone.now()
    campaign, _ = campaign_upsert(slug=f"sse-{uuid.uuid4().hex[:12]}", defaults={
        "title": "SSE", "goal_minor": 10_000, "currency": "EUR", "status": "active",
        "starts_at": now - timedelta(days=1), "ends_at": now + timedelta(days=1)})
    settings.DASHBOARD_SSE_MAX_SECONDS = 20  # a missed message fails in 20 s, not 2 minutes
    stream = _sse_stream(campaign.slug)
    assert next(stream).startswith("retry:")  # subscribed from here on
    ledger.donation_record(campaign=campaign, source=Donation.Source.MANUAL, external_id="cash:1",
                           amount_minor=4200)
    progress_publish(campaign_id=campaign.pk)  # what on_commit does after a real commit
    message = next(stream)
    while message.startswith(":"):
        message = next(stream)  # StopIteration after 20 s: the change never came
    assert message.startswith("event: progress\ndata: ")
    snapshot = json.loads(message.split("data: ", 1)[1])
    assert (snapshot["slug"], snapshot["total_minor"]) == (campaign.slug, 4200)
    stream.close()


def test_the_dashboard_index_lists_campaigns_with_their_progress(campaign):
    client = Client()
    client.force_login(staff_world()["finance"])
    ledger.donation_record(campaign=campaign, source=Donation.Source.MANUAL, external_id="x", amount_minor=500_000)
    page = client.get("/dashboard/").content.decode()
    assert 'href="/dashboard/test-campaign/"' in page and "50 %" in page


def test_the_dashboard_speaks_english_to_an_english_browser(campaign):
    ledger.donation_record(campaign=campaign, source=Donation.Source.MANUAL, external_id="x", amount_minor=123_456)
    client = Client()
    client.force_login(staff_world()["editor"])
    html = client.get(f"/dashboard/{campaign.slug}/live/", headers={"Accept-Language": "en"}).content.decode()
    assert "Pace needed" in html and "Latest gifts" in html
    assert "€1,234.56" in html
