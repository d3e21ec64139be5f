"""Editors in their language: the admin, the manual-gift form and the dashboard's dates follow the browser."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.test import Client
from django.utils import timezone, translation

from campaigns.admin_forms import ManualDonationForm
from campaigns.models import Campaign, Donation
from campaigns.selectors.dashboard import _day
from campaigns.services import ledger
from tests.staff_world import staff_world

pytestmark = pytest.mark.django_db


def _client(user, language: str) -> Client:
    client = Client(headers={"Accept-Language": language})
    client.force_login(user)
    return client


def test_the_admin_names_models_fields_and_choices_in_english_for_an_english_browser(campaign):
    ledger.donation_record(campaign=campaign, source=Donation.Source.MANUAL, external_id="x", amount_minor=500)
    admin = _client(staff_world()["superuser"], "en")
    index = admin.get("/admin/").content.decode()
    assert "Campaigns" in index and "Campagnes" not in index
    donations = admin.get("/admin/campaigns/donation/").content.decode()
    assert "Manual entry" in donations and "Confirmed" in donations
    assert "Saisie manuelle" not in donations and "Confirmé" not in donations
    form = admin.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert "Featured" in form and "Shown by /embed/current/ while it is active." in form
    assert "mise en avant" not in form.lower()


def test_the_admin_stays_french_for_a_french_browser(campaign):
    index = _client(staff_world()["superuser"], "fr").get("/admin/").content.decode()
    assert "Campagnes" in index


@pytest.mark.parametrize(("language", "example"), [("fr", "24/11/2026 14:30:00"), ("en", "2026-11-24 14:30:00")])
def test_the_manual_gift_date_hint_shows_a_format_the_form_reads_in_that_language(campaign, language, example):
    with translation.override(language):
        form = ManualDonationForm()
        hint = str(form.fields["received_at"].help_text)
        assert example in hint
        # What the hint shows is what the form takes.
        filled = ManualDonationForm(data={"campaign": campaign.pk, "method": "cash", "amount": "5",
                                          "received_at": example})
        assert filled.is_valid(), filled.errors
        assert timezone.localtime(filled.cleaned_data["received_at"]).strftime("%d %m %Y %H %M") == "24 11 2026 14 30"


def test_the_manual_gift_form_speaks_english_dates_in_the_admin(campaign):
    page = _client(staff_world()["superuser"], "en").get("/admin/campaigns/donation/manual/").content.decode()
    assert "Format: 2026-11-24 14:30:00." in page
    assert "Format : 24/11" not in page


@pytest.mark.parametrize(("language", "label"), [("fr", "24 nov."), ("en", "Nov 24")])
def test_chart_days_are_written_the_way_the_editor_reads_them(language, label):
    with translation.override(language):
        assert _day(date(2026, 11, 24)) == label


def test_the_dashboard_dates_follow_the_browser(campaign):
    campaign.starts_at = timezone.now() - timedelta(days=3)
    campaign.save()
    ledger.donation_record(campaign=campaign, source=Donation.Source.MANUAL, external_id="x", amount_minor=500)
    editor = staff_world()["editor"]
    english = _client(editor, "en").get(f"/dashboard/{campaign.slug}/live/").content.decode()
    french = _client(editor, "fr").get(f"/dashboard/{campaign.slug}/live/").content.decode()
    start = timezone.localtime(campaign.starts_at).date()
    assert f">{_in('en', start)}<" in english and f">{_in('fr', start)}<" in french
    assert not re.search(r">\d\d/\d\d<", english + french)


def _in(language: str, day: date) -> str:
    with translation.override(language):
        return _day(day)


def test_a_campaign_status_reads_in_english(campaign):
    with translation.override("en"):
        assert str(Campaign.Status.CLOSED.label) == "Closed"
        assert str(Campaign._meta.verbose_name_plural) == "campaigns"
