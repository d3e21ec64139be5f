"""Campaign text in each language: the title and appeal a reader of each language sees on every
embed, page and e-mail, falling back (field by field) to the campaign's own language."""

from __future__ import annotations

import html as htmllib
import re

import pytest
from django.core import mail
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from campaigns import progress_cache
from campaigns.models import Campaign, CampaignTotal, Donation, Milestone, campaign_text
from campaigns.services import ledger, pledge_verification, receipts
from campaigns.services.campaigns import campaign_save, campaign_upsert, milestones_save
from tests import factories
from tests.staff_world import staff_world

pytestmark = pytest.mark.django_db

FR_TITLE, FR_APPEAL = "Campagne de test", "Soutenez une presse libre."
EN_TITLE, EN_APPEAL = "Our test campaign", "Support a free press."
IBAN = "FR7630006000011234567890189"


def _save(campaign: Campaign, capture, **fields) -> Campaign:
    """Edit through the one campaign service, banners republished on commit."""
    for name, value in fields.items():
        setattr(campaign, name, value)
    with capture(execute=True):
        return campaign_save(campaign=campaign)


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.DONATE_RATE_LIMIT = "1000/m"
    settings.PAYMENT_PROVIDERS = ["sandbox", "bank_transfer"]
    settings.BANK_TRANSFER_IBAN = IBAN
    settings.BANK_TRANSFER_HOLDER = "Association des lecteurs"


@pytest.fixture
def translated(campaign, django_capture_on_commit_callbacks) -> Campaign:
    """A French campaign with its English title and appeal."""
    return _save(campaign, django_capture_on_commit_callbacks, appeal=FR_APPEAL,
                 translations={"en": {"title": EN_TITLE, "appeal": EN_APPEAL}})


@pytest.fixture
def untranslated(campaign, django_capture_on_commit_callbacks) -> Campaign:
    return _save(campaign, django_capture_on_commit_callbacks, appeal=FR_APPEAL)


def _text(response) -> str:
    return htmllib.unescape(response.content.decode())


# --- The rule ------------------------------------------------------------------------------------


def test_each_text_falls_back_on_its_own_to_the_campaigns_language(campaign, django_capture_on_commit_callbacks):
    _save(campaign, django_capture_on_commit_callbacks, appeal=FR_APPEAL, translations={"en": {"title": EN_TITLE}})
    campaign.refresh_from_db()
    english = campaign_text(campaign, "en")
    assert (english.title, english.title_lang) == (EN_TITLE, "en")
    assert (english.appeal, english.appeal_lang) == (FR_APPEAL, "fr")  # no English appeal: the French one
    assert campaign_text(campaign, "fr") == (FR_TITLE, FR_APPEAL, "fr", "fr")
    assert campaign_text(campaign, None) == campaign_text(campaign, "fr")  # no language: the campaign's


def test_campaign_upsert_takes_translations_and_drops_empty_ones(db):
    now = timezone.now()
    campaign, _ = campaign_upsert(slug="bilingue", defaults={
        "title": "Bilingue", "goal_minor": 100_000, "starts_at": now, "ends_at": now + timezone.timedelta(days=3),
        "translations": {"en": {"title": "  Bilingual  ", "appeal": ""}},
    })
    campaign.refresh_from_db()
    assert campaign.translations == {"en": {"title": "Bilingual"}}
    campaign, _ = campaign_upsert(slug="bilingue", defaults={"translations": {"en": {"title": " ", "appeal": ""}}})
    campaign.refresh_from_db()
    assert campaign.translations == {}


@pytest.mark.parametrize(("translations", "message"), [
    ({"de": {"title": "Unsere Kampagne"}}, "Langue inconnue : « de » (langues possibles : fr, en)."),
    ({"fr": {"title": "Autre titre"}}, "Français est la langue de la campagne"),
    ({"en": {"titel": "Typo"}}, "Traductions : un objet"),
    ({"en": "Our campaign"}, "Traductions : un objet"),
    (["en", "Our campaign"], "Traductions : un objet"),
    ({"en": {"title": "x" * 201}}, "Titre trop long (English) : au plus 200 caractères."),
])
def test_bad_translations_are_refused_with_a_clear_error_and_change_nothing(
    translated, django_capture_on_commit_callbacks, translations, message
):
    version = CampaignTotal.objects.get(campaign=translated).version
    translated.translations = translations
    with pytest.raises(ValidationError) as error:
        campaign_save(campaign=translated)
    assert any(message in text for text in error.value.message_dict["translations"])
    stored = Campaign.objects.get(pk=translated.pk)
    assert stored.translations == {"en": {"title": EN_TITLE, "appeal": EN_APPEAL}}
    assert CampaignTotal.objects.get(campaign=translated).version == version


def test_a_campaign_cannot_switch_to_a_language_it_has_a_translation_for(translated):
    translated.locale = "en"
    with pytest.raises(ValidationError, match="English est la langue de la campagne"):
        campaign_save(campaign=translated)
    assert Campaign.objects.get(pk=translated.pk).locale == "fr"


# --- Embeds --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/embed/test-campaign/", "/embed/test-campaign/frame/", "/embed/current/"])
def test_the_banner_speaks_the_readers_language_when_translated(client, translated, path):
    english = _text(client.get(path, {"lang": "en"}))
    assert f'<p class="jauge-title">{EN_TITLE}</p>' in english
    assert f'<div class="jauge-appeal">{EN_APPEAL}</div>' in english
    assert FR_TITLE not in english and FR_APPEAL not in english
    french = _text(client.get(path, {"lang": "fr"}))
    assert f'<p class="jauge-title">{FR_TITLE}</p>' in french and FR_APPEAL in french
    assert EN_TITLE not in french
    # No ?lang=: the campaign's own language.
    assert f'<p class="jauge-title">{FR_TITLE}</p>' in _text(client.get(path))


@pytest.mark.parametrize("path", ["/embed/test-campaign/", "/embed/test-campaign/frame/"])
def test_an_untranslated_banner_falls_back_to_the_campaigns_text_marked_in_its_language(client, untranslated, path):
    english = _text(client.get(path, {"lang": "en"}))
    assert "Donate" in english  # the interface is English…
    # …the campaign's words are French, and say so to screen readers (WCAG 3.1.2).
    assert f'<p class="jauge-title" lang="fr">{FR_TITLE}</p>' in english
    assert f'<div class="jauge-appeal" lang="fr">{FR_APPEAL}</div>' in english


def test_the_compact_banner_and_the_svg_carry_the_translated_title(client, translated, untranslated):
    compact = _text(client.get("/embed/test-campaign/", {"lang": "en", "variant": "compact"}))
    assert f'<strong class="jauge-title">{EN_TITLE}</strong>' in compact
    svg = _text(client.get("/embed/test-campaign.svg", {"lang": "en"}))
    assert f'<title id="jauge-title">{EN_TITLE}</title>' in svg
    assert f'fill="#1a1a1a">{EN_TITLE}</text>' in svg
    assert f'<title id="jauge-title">{FR_TITLE}</title>' in _text(client.get("/embed/test-campaign.svg"))


def test_an_untranslated_svg_marks_the_french_title(client, untranslated):
    svg = _text(client.get("/embed/test-campaign.svg", {"lang": "en"}))
    assert f'<title id="jauge-title" lang="fr">{FR_TITLE}</title>' in svg


def test_progress_json_gives_the_title_in_every_language_in_one_body(client, translated,
                                                                    django_capture_on_commit_callbacks):
    data = client.get("/api/campaigns/test-campaign/progress.json").json()
    assert data["title"] == FR_TITLE  # the contract's field is unchanged: the campaign's own language
    assert data["titles"] == {"fr": FR_TITLE, "en": EN_TITLE}
    _save(translated, django_capture_on_commit_callbacks, translations={})
    assert client.get("/api/campaigns/test-campaign/progress.json").json()["titles"] == {"fr": FR_TITLE, "en": FR_TITLE}


def test_a_warm_english_banner_costs_no_query(client, translated, django_assert_num_queries):
    client.get("/embed/test-campaign/", {"lang": "en"})
    progress_cache.progress_local_forget()
    with django_assert_num_queries(0):  # the translations are in the cached snapshot
        assert EN_TITLE in _text(client.get("/embed/test-campaign/frame/", {"lang": "en"}))
        assert EN_TITLE in _text(client.get("/embed/test-campaign.svg", {"lang": "en"}))


def test_editing_a_translation_shows_on_the_cached_banner_at_once(client, translated,
                                                                   django_capture_on_commit_callbacks):
    before = client.get("/embed/test-campaign/", {"lang": "en"})
    assert EN_TITLE in _text(before)
    # Cached: the same ETag answers 304.
    assert client.get("/embed/test-campaign/", {"lang": "en"}, HTTP_IF_NONE_MATCH=before["ETag"]).status_code == 304
    version = CampaignTotal.objects.get(campaign=translated).version
    _save(translated, django_capture_on_commit_callbacks,
          translations={"en": {"title": "Our new title", "appeal": EN_APPEAL}})
    assert CampaignTotal.objects.get(campaign=translated).version == version + 1
    after = client.get("/embed/test-campaign/", {"lang": "en"}, HTTP_IF_NONE_MATCH=before["ETag"])
    assert after.status_code == 200 and after["ETag"] != before["ETag"]
    assert "Our new title" in _text(after) and EN_TITLE not in _text(after)
    # The snapshot in the shared cache carries it (another web process sees it too).
    progress_cache.progress_local_forget()
    assert cache.get(progress_cache.progress_key("test-campaign"))["translations"]["en"]["title"] == "Our new title"


def test_a_webhook_snapshot_keeps_the_translations_without_a_query(client, translated,
                                                                   django_capture_on_commit_callbacks,
                                                                   django_assert_num_queries):
    from campaigns.models import PaymentEvent
    from campaigns.services import intake
    from tests.factories import post_webhook, webhook_body

    no_receipt = {"name": "Marie", "email": "", "anonymous": False}
    post_webhook(client, webhook_body(event_id="evt_t", donation_id="don_t", amount_minor=700, donor=no_receipt))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        intake.payment_event_process(event_id=PaymentEvent.objects.get(event_id="evt_t").pk)
    with django_assert_num_queries(0):  # published from the rows the transaction locked
        for callback in callbacks:
            callback()
    progress_cache.progress_local_forget()
    english = _text(client.get("/embed/test-campaign/", {"lang": "en"}))
    assert EN_TITLE in english and "€7.00" in english


# --- Pages ---------------------------------------------------------------------------------------


def test_the_donation_page_in_each_language_with_and_without_a_translation(client, translated,
                                                                            django_capture_on_commit_callbacks):
    english = _text(client.get("/c/test-campaign/", {"lang": "en"}))
    assert f"<title>{EN_TITLE}</title>" in english and f"<h1>{EN_TITLE}</h1>" in english
    assert f'<div class="appeal"><p>{EN_APPEAL}</p></div>' in english
    french = _text(client.get("/c/test-campaign/"))
    assert f"<h1>{FR_TITLE}</h1>" in french and FR_APPEAL in french and EN_TITLE not in french
    _save(translated, django_capture_on_commit_callbacks, translations={})
    fallback = _text(client.get("/c/test-campaign/", {"lang": "en"}))
    assert f'<h1 lang="fr">{FR_TITLE}</h1>' in fallback
    assert f'<div class="appeal" lang="fr"><p>{FR_APPEAL}</p></div>' in fallback


def _pledge(client: Client, lang: str, provider: str = "sandbox") -> Donation:
    url = "/c/test-campaign/donate/" + (f"?lang={lang}" if lang else "")
    response = client.post(url, {"amount": "25", "frequency": "once", "name": "Ann", "email": "ann@example.org",
                                 "provider": provider})
    assert response.status_code == 302, response.content.decode()[:2000]
    return Donation.objects.latest("pk")


def test_the_checkout_and_thank_you_pages_speak_the_readers_language(client, translated):
    donation = _pledge(client, "en")
    assert donation.locale == "en"
    checkout = _text(client.get(f"/c/test-campaign/checkout/{donation.reference}/", {"lang": "en"}))
    assert f"<p>{EN_TITLE}</p>" in checkout
    thanks = client.get(f"/c/test-campaign/merci/{donation.reference}/", {"lang": "en"})
    page = _text(thanks)
    assert f"<p>{EN_TITLE}</p>" in page and "Thank you!" in page
    assert "Our%20test%20campaign" in page  # the share links name it in English too
    french = _text(client.get(f"/c/test-campaign/merci/{donation.reference}/"))
    assert f"<p>{FR_TITLE}</p>" in french


def test_the_thank_you_page_falls_back_to_the_french_title(client, untranslated):
    donation = _pledge(client, "en")
    page = _text(client.get(f"/c/test-campaign/merci/{donation.reference}/", {"lang": "en"}))
    assert f'<p lang="fr">{FR_TITLE}</p>' in page


def test_the_closed_page_speaks_the_readers_language(client, translated):
    Campaign.objects.filter(pk=translated.pk).update(status=Campaign.Status.PAUSED)
    response = client.post("/c/test-campaign/donate/?lang=en", {"amount": "25", "frequency": "once",
                                                                 "provider": "sandbox", "lang": "en"})
    assert response.status_code == 403
    assert f"<h1>{EN_TITLE}</h1>" in _text(response)
    french = client.post("/c/test-campaign/donate/", {"amount": "25", "frequency": "once", "provider": "sandbox"})
    assert f"<h1>{FR_TITLE}</h1>" in _text(french)


@pytest.mark.parametrize(("lang", "title", "subject"), [
    ("en", EN_TITLE, f"Confirm your transfer pledge to “{EN_TITLE}”"),
    ("fr", FR_TITLE, f"Confirmez votre promesse de virement pour « {FR_TITLE} »"),
])
def test_the_pledge_email_and_its_confirmation_page_speak_the_donors_language(client, translated, lang, title,
                                                                              subject):
    donation = _pledge(client, lang, provider="bank_transfer")
    mail.outbox.clear()
    assert pledge_verification.pledge_details_send(donation_id=donation.pk)
    message = mail.outbox[0]
    assert message.subject == subject
    assert title in message.body
    path = "/" + re.search(r"https?://[^/]+/(\S+/promesse/\S+/)", message.body).group(1)
    page = _text(client.get(path))
    assert f"<p>{title}</p>" in page


# --- E-mails -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("lang", "subject"), [
    ("en", f"Thank you for your gift to “{EN_TITLE}”"),
    ("fr", f"Merci pour votre don à « {FR_TITLE} »"),
])
def test_the_receipt_speaks_the_donors_language(client, translated, lang, subject):
    donation = _pledge(client, lang)
    factories.confirm(donation.pk)
    mail.outbox.clear()
    assert receipts.receipts_send_due() == 1
    assert mail.outbox[0].subject == subject


def test_an_english_receipt_without_a_translation_names_the_french_title(client, untranslated):
    donation = _pledge(client, "en")
    factories.confirm(donation.pk)
    mail.outbox.clear()
    assert receipts.receipts_send_due() == 1
    assert mail.outbox[0].subject == f"Thank you for your gift to “{FR_TITLE}”"
    assert "We have received your gift of €25.00" in mail.outbox[0].body


def test_the_milestone_email_names_the_campaign_in_its_own_language(translated, settings,
                                                                     django_capture_on_commit_callbacks):
    settings.MILESTONE_EMAILS = ["redaction@example.org"]
    with django_capture_on_commit_callbacks(execute=True):
        milestones_save(campaign_id=translated.pk, deleted=[], changed=[Milestone(amount_minor=1_000, label="Dix")])
    with django_capture_on_commit_callbacks(execute=True):
        ledger.donation_record(campaign=translated, source="manual", external_id="m1", amount_minor=1_500)
    from campaigns.services.milestones import milestone_emails_send

    mail.outbox.clear()
    assert milestone_emails_send(campaign_id=translated.pk) == 1
    assert mail.outbox[0].subject == f"« {FR_TITLE} » : palier atteint (Dix)"


def test_stripe_checkout_names_the_campaign_in_the_donors_language(client, translated, settings, monkeypatch):
    import stripe

    from tests.test_stripe import FakeStripeHTTP

    settings.STRIPE_SECRET_KEY = "sk_test_jauge"
    settings.PAYMENT_PROVIDERS = ["stripe"]
    fake = FakeStripeHTTP()
    monkeypatch.setattr(stripe, "default_http_client", fake)
    client.post("/c/test-campaign/donate/?lang=en", {"amount": "25", "frequency": "once", "name": "Ann",
                                                      "email": "ann@example.org", "provider": "stripe"})
    data = {key: values[0] for key, values in fake.requests[0]["data"].items()}
    assert data["line_items[0][price_data][product_data][name]"] == EN_TITLE
    assert data["locale"] == "en"


# --- Admin ---------------------------------------------------------------------------------------


def _admin_form(campaign: Campaign, **overrides) -> dict:
    data = {
        "title": campaign.title, "slug": campaign.slug, "status": campaign.status, "locale": campaign.locale,
        "starts_at_0": timezone.localtime(campaign.starts_at).strftime("%d/%m/%Y"), "starts_at_1": "00:00:00",
        "ends_at_0": timezone.localtime(campaign.ends_at).strftime("%d/%m/%Y"), "ends_at_1": "23:59:59",
        "currency": "EUR", "goal_minor": "10 000", "preset_amounts_minor": "", "min_amount_minor": "1",
        "max_amount_minor": "100000", "appeal": FR_APPEAL, "color_primary": "#b8002e",
        "color_background": "#ffffff", "color_text": "#1a1a1a", "font_family": "", "allowed_origins": "",
        "poll_interval_seconds": "10", "thank_days": "30", "pending_cap_percent": "25",
        "title_fr": "", "appeal_fr": "", "title_en": "", "appeal_en": "",
    }
    data.update(overrides)
    return data


@pytest.fixture
def editor() -> Client:
    client = Client()
    client.force_login(staff_world()["editor"])
    return client


def test_an_editor_writes_the_english_text_in_the_campaign_form_and_the_banner_follows(
    editor, client, untranslated, django_capture_on_commit_callbacks
):
    url = f"/admin/campaigns/campaign/{untranslated.pk}/change/"
    form = editor.get(url).content.decode()
    assert 'name="title_en"' in form and 'name="appeal_en"' in form
    before = client.get("/embed/test-campaign/", {"lang": "en"})
    with django_capture_on_commit_callbacks(execute=True):
        response = editor.post(url, _admin_form(untranslated, title_en=EN_TITLE, appeal_en=EN_APPEAL))
    assert response.status_code == 302, _text(response)[-3000:]
    assert Campaign.objects.get(pk=untranslated.pk).translations == {"en": {"title": EN_TITLE, "appeal": EN_APPEAL}}
    assert f'value="{EN_TITLE}"' in editor.get(url).content.decode()  # shown back
    after = client.get("/embed/test-campaign/", {"lang": "en"}, HTTP_IF_NONE_MATCH=before["ETag"])
    assert after.status_code == 200 and f'<p class="jauge-title">{EN_TITLE}</p>' in _text(after)
    # Emptied: the French text again.
    with django_capture_on_commit_callbacks(execute=True):
        editor.post(url, _admin_form(untranslated))
    assert Campaign.objects.get(pk=untranslated.pk).translations == {}


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"title_fr": "Autre titre"}, "title_fr", "Français est la langue de la campagne"),
    ({"locale": "en", "title_en": EN_TITLE}, "title_en", "English est la langue de la campagne"),
    ({"title_en": "x" * 201}, "title_en", "200"),
])
def test_the_campaign_form_refuses_a_bad_translation_and_saves_nothing(
    editor, translated, overrides, field, message
):
    version = CampaignTotal.objects.get(campaign=translated).version
    response = editor.post(f"/admin/campaigns/campaign/{translated.pk}/change/",
                           _admin_form(translated, **{"title_en": EN_TITLE, "appeal_en": EN_APPEAL, **overrides}))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert field in errors and message in " ".join(errors[field])
    stored = Campaign.objects.get(pk=translated.pk)
    assert (stored.locale, stored.translations) == ("fr", {"en": {"title": EN_TITLE, "appeal": EN_APPEAL}})
    assert CampaignTotal.objects.get(campaign=translated).version == version


def test_an_editor_moves_the_text_when_switching_the_campaigns_language(editor, translated):
    response = editor.post(f"/admin/campaigns/campaign/{translated.pk}/change/", _admin_form(
        translated, locale="en", title=EN_TITLE, appeal=EN_APPEAL, title_fr=FR_TITLE, appeal_fr=FR_APPEAL))
    assert response.status_code == 302
    stored = Campaign.objects.get(pk=translated.pk)
    assert (stored.locale, stored.title) == ("en", EN_TITLE)
    assert stored.translations == {"fr": {"title": FR_TITLE, "appeal": FR_APPEAL}}


def test_finance_reads_the_translations_without_editing_them(translated):
    client = Client()
    client.force_login(staff_world()["finance"])
    page = _text(client.get(f"/admin/campaigns/campaign/{translated.pk}/change/"))
    assert 'name="title_en"' not in page
    assert f"<strong>English</strong> : {EN_TITLE}" in page
