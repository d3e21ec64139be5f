"""The campaign form: major-unit money, validation, frozen slug, preview and embed snippets."""

from __future__ import annotations

from unittest import mock

import pytest
from django.test import Client

from campaigns.models import Campaign, CampaignTotal, Donation
from campaigns.services import ledger
from tests.staff_world import staff_world


@pytest.fixture
def editor(db) -> Client:
    client = Client()
    client.force_login(staff_world()["editor"])
    return client


def _form(**overrides) -> dict:
    data = {
        "title": "Campagne de dons Mai-Juin 2023", "slug": "mai-juin", "status": "draft", "locale": "fr",
        "starts_at_0": "2026-05-01", "starts_at_1": "00:00:00", "ends_at_0": "2026-06-30", "ends_at_1": "23:59:59",
        "currency": "EUR", "goal_minor": "25 000", "preset_amounts_minor": "10 ; 25 ; 50,50",
        "min_amount_minor": "2", "max_amount_minor": "5000", "appeal": "Soutenez-nous",
        "color_primary": "#b8002e", "color_background": "#ffffff", "color_text": "#1a1a1a", "font_family": "",
        "allowed_origins": "https://www.exemple.fr\nhttps://blog.exemple.fr/", "poll_interval_seconds": "10",
        "thank_days": "30",
    }
    data.update(overrides)
    return data


def test_an_editor_creates_a_campaign_in_major_units_and_banners_are_told(editor):
    with mock.patch("campaigns.services.campaigns.campaign_changed") as changed:
        response = editor.post("/admin/campaigns/campaign/add/", _form())
    assert response.status_code == 302, response.content.decode()[:3000]
    campaign = Campaign.objects.get(slug="mai-juin")
    assert campaign.goal_minor == 2_500_000
    assert campaign.preset_amounts_minor == [1000, 2500, 5050]
    assert (campaign.min_amount_minor, campaign.max_amount_minor) == (200, 500_000)
    assert campaign.origins == ["https://www.exemple.fr", "https://blog.exemple.fr"]
    assert CampaignTotal.objects.filter(campaign=campaign).exists()
    changed.assert_called_once_with(campaign_id=campaign.pk)


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"ends_at_0": "2026-04-01"}, "ends_at", "La fin doit être après le début"),
    ({"goal_minor": "0"}, "goal_minor", "supérieur à zéro"),
    ({"goal_minor": "beaucoup"}, "goal_minor", "Montant invalide"),
    ({"currency": "XYZ"}, "currency", "Devise inconnue"),
    ({"slug": "current"}, "slug", "réservé"),
    ({"max_amount_minor": "1"}, "max_amount_minor", "au moins égal au minimum"),
    ({"preset_amounts_minor": "1 ; 10"}, "preset_amounts_minor", "entre le minimum et le maximum"),
    ({"allowed_origins": "www.exemple.fr"}, "allowed_origins", "Pas une origine"),
    ({"color_primary": "red"}, "color_primary", "#rrggbb"),
])
def test_the_campaign_form_refuses_bad_input_with_a_clear_error(editor, overrides, field, message):
    response = editor.post("/admin/campaigns/campaign/add/", _form(**overrides))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert field in errors, errors
    assert message in str(errors[field])
    assert not Campaign.objects.exists()


def test_the_slug_is_frozen_once_the_campaign_is_live(editor):
    assert editor.post("/admin/campaigns/campaign/add/", _form(status="active")).status_code == 302
    campaign = Campaign.objects.get()
    page = editor.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert "Figé" in page
    response = editor.post(f"/admin/campaigns/campaign/{campaign.pk}/change/", _form(
        status="active", slug="autre-slug", title="Nouveau titre"))
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.slug, campaign.title) == ("mai-juin", "Nouveau titre")


def test_a_draft_keeps_an_editable_slug_until_money_arrives(editor):
    editor.post("/admin/campaigns/campaign/add/", _form())
    campaign = Campaign.objects.get()
    editor.post(f"/admin/campaigns/campaign/{campaign.pk}/change/", _form(slug="renomme"))
    campaign.refresh_from_db()
    assert campaign.slug == "renomme"
    ledger.donation_record(campaign=campaign, source=Donation.Source.MANUAL, external_id="x", amount_minor=100)
    editor.post(f"/admin/campaigns/campaign/{campaign.pk}/change/", _form(slug="encore"))
    campaign.refresh_from_db()
    assert campaign.slug == "renomme"


def test_the_change_page_shows_the_preview_and_the_four_embed_snippets(editor, settings):
    settings.PUBLIC_URL = "https://dons.exemple.fr"
    editor.post("/admin/campaigns/campaign/add/", _form())
    campaign = Campaign.objects.get()
    page = editor.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert 'src="/embed/mai-juin/frame/?preview=' in page
    assert "&lt;script src=&quot;https://dons.exemple.fr/embed/mai-juin.js&quot; async&gt;&lt;/script&gt;" in page
    assert "https://dons.exemple.fr/embed/mai-juin/frame/" in page
    # The iframe snippet carries the loader's relay, so a reader who just gave is thanked there too.
    assert "&lt;script src=&quot;https://dons.exemple.fr/embed/mai-juin.js&quot; data-mode=&quot;relay&quot;" in page
    assert "hx-get=&quot;https://dons.exemple.fr/embed/mai-juin/&quot;" in page
    assert "&lt;img src=&quot;https://dons.exemple.fr/embed/mai-juin.svg&quot;" in page
    assert page.count("data-jauge-copy=") == 4
    assert "25 000,00" in page.replace("\u202f", " ") or 'value="25000,00"' in page


def test_the_campaign_list_shows_progress_and_the_formatted_total(editor, campaign):
    ledger.donation_record(campaign=campaign, source=Donation.Source.MANUAL, external_id="x", amount_minor=250_000)
    page = editor.get("/admin/campaigns/campaign/").content.decode()
    assert "jauge-admin-bar" in page and "25 %" in page
    assert "2\u202f500,00\u00a0€ / 10\u202f000,00\u00a0€" in page


def test_finance_sees_a_campaign_read_only_with_formatted_money(campaign):
    client = Client()
    client.force_login(staff_world()["finance"])
    page = client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert "10\u202f000,00\u00a0€" in page
    assert 'name="goal_minor"' not in page and "1000000" not in page


def test_the_campaign_rules_hold_for_every_caller_not_only_the_admin_form(campaign):
    """The seed, a shell or a future API save through campaign_save: a live campaign keeps its slug
    (pasted embeds point at it) and a campaign with money keeps its currency."""
    from django.core.exceptions import ValidationError

    from campaigns.services.campaigns import campaign_save
    from campaigns.services.ledger import donation_record

    campaign.slug = "renamed"
    with pytest.raises(ValidationError) as refused:
        campaign_save(campaign=campaign)
    assert "slug" in refused.value.message_dict
    campaign.refresh_from_db()
    donation_record(campaign=campaign, source="manual", external_id="cheque:1", amount_minor=100)
    campaign.currency = "CHF"
    with pytest.raises(ValidationError) as refused:
        campaign_save(campaign=campaign)
    assert "currency" in refused.value.message_dict
    assert Campaign.objects.get(pk=campaign.pk).currency == "EUR"


def test_the_admins_htmx_snippet_is_the_readmes_one_that_polls_once_and_stops_when_closed(live, settings):
    # The fragment polls itself (and stops when the campaign closes): a container that polls too
    # would double every reader's requests and never stop.
    from campaigns.admin.campaigns import embed_snippets

    settings.PUBLIC_URL = "https://dons.exemple.fr"
    live.title = 'Le "grand" appel'
    snippets = {name: code for name, _label, code in embed_snippets(live)}
    htmx = snippets["htmx"]
    assert 'hx-get="https://dons.exemple.fr/embed/printemps/"' in htmx
    assert 'hx-trigger="load"' in htmx and 'hx-swap="outerHTML"' in htmx
    assert "every" not in htmx
    # What the README says a cross-origin hx-get needs: htmx allowed off-origin, and the stylesheet.
    assert '"selfRequestsOnly": false' in htmx
    assert 'href="https://dons.exemple.fr/static/embed/jauge-embed.css"' in htmx
    # A quote in the title does not break the copied HTML.
    assert 'title="Le &quot;grand&quot; appel"' in snippets["iframe"]
    assert 'alt="Le &quot;grand&quot; appel"' in snippets["svg"]
