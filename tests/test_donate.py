"""The reader donation page and POST /c/<slug>/donate/: validation, pledges, closed campaigns, abuse."""

from __future__ import annotations

import html as htmllib
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from campaigns.models import Campaign, CampaignTotal, Donation
from campaigns.references import is_valid_code
from campaigns.services import pledges
from tests import factories

pytestmark = pytest.mark.django_db

IBAN = "FR7630006000011234567890189"


@pytest.fixture(autouse=True)
def _donation_settings(settings):
    settings.DONATE_RATE_LIMIT = "1000/m"
    settings.PAYMENT_PROVIDERS = ["sandbox", "stripe", "bank_transfer"]
    settings.BANK_TRANSFER_IBAN = IBAN
    settings.BANK_TRANSFER_BIC = "AGRIFRPP"
    settings.BANK_TRANSFER_HOLDER = "Association des lecteurs"
    settings.STRIPE_SECRET_KEY = ""


@pytest.fixture
def open_campaign(campaign) -> Campaign:
    campaign.preset_amounts_minor = [1000, 2500, 5000, 10000]
    campaign.min_amount_minor = 200
    campaign.max_amount_minor = 500_000
    campaign.save()
    return campaign


def form_data(**overrides) -> dict:
    data = {
        "amount": "25",
        "frequency": "once",
        "name": "Marie Curie",
        "email": "marie@example.org",
        "message": "Tenez bon !",
        "provider": "sandbox",
        "article": "https://www.example.org/article-1",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def text(response) -> str:
    """The page as a reader reads it (entities such as &#x27; decoded)."""
    return htmllib.unescape(response.content.decode())


def donate(client: Client, slug: str = "test-campaign", lang: str = "", **overrides):
    url = f"/c/{slug}/donate/" + (f"?lang={lang}" if lang else "")
    return client.post(url, form_data(**overrides))


def test_page_shows_appeal_presets_form_and_progress(client, open_campaign):
    response = client.get("/c/test-campaign/")
    html = response.content.decode()
    assert response.status_code == 200
    for name in ("amount", "frequency", "name", "email", "anonymous", "message", "provider", "article"):
        assert f'name="{name}"' in html
    assert "csrfmiddlewaretoken" in html
    assert "25,00\xa0€" in html  # a preset, formatted by Babel
    assert "jauge-progress" in html  # the shared progress fragment
    assert "Donner" in html


def test_page_switches_to_english(client, open_campaign):
    html = client.get("/c/test-campaign/?lang=en").content.decode()
    assert '<html lang="en">' in html
    assert "Amount of your gift" in html
    assert "€25.00" in html


@pytest.mark.parametrize(("typed", "minor"), [("25", 2500), ("25,50", 2550), ("25.50", 2550), (" 7 € ", 700)])
def test_amount_is_read_as_the_reader_types_it(client, open_campaign, typed, minor):
    response = donate(client, amount=typed)
    assert response.status_code == 302
    donation = Donation.objects.get()
    assert donation.amount_minor == minor


def test_a_pledge_is_a_pending_donation_with_a_checked_reference(client, open_campaign):
    response = donate(client)
    donation = Donation.objects.get()
    assert response["Location"] == f"/c/test-campaign/checkout/{donation.reference}/"
    assert donation.status == Donation.Status.PENDING
    assert donation.source == Donation.Source.SANDBOX
    assert donation.external_id == donation.reference
    assert donation.reference.startswith("JG-") and is_valid_code(donation.reference[3:])
    assert (donation.donor_name, donation.donor_email, donation.message) == ("Marie Curie", "marie@example.org",
                                                                              "Tenez bon !")
    assert donation.article_url == "https://www.example.org/article-1"
    # A sandbox pledge is not promised money: nothing moves until it is paid.
    total = CampaignTotal.objects.get(campaign=open_campaign)
    assert (total.total_minor, total.pending_minor) == (0, 0)


def test_typed_amount_wins_over_a_preset(client, open_campaign):
    client.post("/c/test-campaign/donate/", {**form_data(), "amount": ["50", "12,30"]})
    assert Donation.objects.get().amount_minor == 1230


def test_preset_alone_is_the_amount(client, open_campaign):
    client.post("/c/test-campaign/donate/", {**form_data(), "amount": ["50", ""]})
    assert Donation.objects.get().amount_minor == 5000


FRENCH_ERRORS = [
    ({"amount": "vingt"}, "« vingt » n'est pas un montant : écrivez par exemple 25 ou 25,50."),
    ({"amount": "25,555"}, "n'est pas un montant"),
    ({"amount": ""}, "Choisissez ou saisissez un montant."),
    ({"amount": "1"}, "Le don minimum est de 2,00\xa0€."),
    ({"amount": "5000,01"}, "Le don maximum est de 5\u202f000,00\xa0€."),
    ({"email": "marie-at-example"}, "Cette adresse e-mail n'est pas valide."),
    ({"email": None}, "Indiquez votre adresse e-mail : le reçu y sera envoyé."),
    ({"name": "  "}, "Indiquez votre nom."),
    ({"frequency": "weekly"}, "Choisissez un don ponctuel ou mensuel."),
    ({"provider": "paypal"}, "Ce moyen de paiement n'est pas proposé."),
    ({"message": "x" * 501}, "Le message ne peut dépasser 500 caractères."),
    ({"frequency": "monthly", "provider": "bank_transfer"}, "Le don mensuel n'est pas proposé avec ce moyen"),
]


@pytest.mark.parametrize(("overrides", "message"), FRENCH_ERRORS)
def test_each_field_is_validated_with_a_clear_french_message(client, open_campaign, overrides, message):
    response = donate(client, **overrides)
    assert response.status_code == 400
    assert message in text(response)
    assert not Donation.objects.exists()


ENGLISH_ERRORS = [
    ({"amount": "vingt"}, "“vingt” is not an amount: write for example 25 or 25.50."),
    ({"amount": "1"}, "The minimum gift is €2.00."),
    ({"amount": "5000,01"}, "The maximum gift is €5,000.00."),
    ({"email": "marie-at-example"}, "This e-mail address is not valid."),
    ({"name": ""}, "Please give your name."),
    ({"provider": "paypal"}, "This payment method is not offered."),
]


@pytest.mark.parametrize(("overrides", "message"), ENGLISH_ERRORS)
def test_each_field_is_validated_with_a_clear_english_message(client, open_campaign, overrides, message):
    response = donate(client, lang="en", **overrides)
    assert response.status_code == 400
    assert message in text(response)
    assert not Donation.objects.exists()


def test_an_english_campaign_speaks_english_by_default(client, open_campaign):
    open_campaign.locale = "en"
    open_campaign.save()
    assert "The minimum gift is €2.00." in text(donate(client, amount="1"))


def test_htmx_errors_come_back_in_place_next_to_the_field(client, open_campaign):
    response = client.post("/c/test-campaign/donate/", form_data(email="nope"), headers={"HX-Request": "true"})
    html = text(response)
    assert response.status_code == 200  # htmx swaps 2xx answers only
    assert html.lstrip().startswith("<form")
    assert 'id="email-error"' in html and "Cette adresse e-mail n'est pas valide." in html
    assert 'value="Marie Curie"' in html  # what the reader typed is kept
    assert "HX-Request" in response["Vary"]


def test_htmx_success_redirects_the_whole_page(client, open_campaign):
    response = client.post("/c/test-campaign/donate/", form_data(), headers={"HX-Request": "true"})
    donation = Donation.objects.get()
    assert response["HX-Redirect"] == f"/c/test-campaign/checkout/{donation.reference}/"


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"status": Campaign.Status.CLOSED}, "Cette campagne est terminée"),
        ({"status": Campaign.Status.PAUSED}, "suspendus pour le moment"),
        ({"ends_at_delta": -1}, "Cette campagne est terminée"),
        ({"starts_at_delta": 2}, "n'a pas encore commencé"),
    ],
)
def test_a_campaign_not_open_refuses_gifts_with_a_clear_page(client, open_campaign, change, text):
    now = timezone.now()
    if "status" in change:
        open_campaign.status = change["status"]
    if "ends_at_delta" in change:
        open_campaign.starts_at, open_campaign.ends_at = now - timedelta(days=30), now - timedelta(days=1)
    if "starts_at_delta" in change:
        open_campaign.starts_at, open_campaign.ends_at = now + timedelta(days=2), now + timedelta(days=30)
    open_campaign.save()
    response = donate(client)
    assert response.status_code == 403
    assert text in htmllib.unescape(response.content.decode())
    assert not Donation.objects.exists()
    page = htmllib.unescape(client.get("/c/test-campaign/").content.decode())
    assert text in page and 'name="email"' not in page


def test_a_draft_campaign_refuses_gifts_without_showing_its_title(client, open_campaign):
    open_campaign.status = Campaign.Status.DRAFT
    open_campaign.save()
    response = donate(client)
    assert response.status_code == 403
    assert "pas encore ouverte" in text(response)
    assert open_campaign.title not in response.content.decode()
    assert client.get("/c/test-campaign/").status_code == 404


def test_a_post_without_csrf_token_is_refused(open_campaign):
    response = donate(Client(enforce_csrf_checks=True))
    assert response.status_code == 403
    assert not Donation.objects.exists()


def test_a_filled_honeypot_creates_nothing(client, open_campaign):
    response = donate(client, website="http://spam.example")
    assert response.status_code == 400
    assert "Envoi refusé" in response.content.decode()
    assert not Donation.objects.exists()


def test_too_many_posts_from_one_address_get_a_readable_429(client, open_campaign, settings):
    settings.DONATE_RATE_LIMIT = "3/10m"
    cache.clear() if cache.__class__.__name__ == "LocMemCache" else None
    address = {"REMOTE_ADDR": "203.0.113.77"}
    for _ in range(3):
        assert client.post("/c/test-campaign/donate/", form_data(), **address).status_code == 302
    response = client.post("/c/test-campaign/donate/", form_data(), **address)
    assert response.status_code == 429
    assert "Trop de tentatives" in response.content.decode()
    assert response["Retry-After"]
    assert Donation.objects.count() == 3
    # Another address is not affected.
    assert client.post("/c/test-campaign/donate/", form_data(), REMOTE_ADDR="203.0.113.78").status_code == 302


def test_invalid_posts_count_toward_the_rate_limit_too(client, open_campaign, settings):
    # Issue #10: a bot probing the form with bad posts pays like one creating pledges.
    settings.DONATE_RATE_LIMIT = "3/10m"
    address = {"REMOTE_ADDR": "203.0.113.90"}
    for _ in range(3):
        assert client.post("/c/test-campaign/donate/", form_data(email="oops"), **address).status_code == 400
    response = client.post("/c/test-campaign/donate/", form_data(), headers={"HX-Request": "true"}, **address)
    assert response.status_code == 200  # htmx: the explanation is swapped into the form
    assert "Trop de tentatives depuis votre connexion" in text(response)
    assert client.post("/c/test-campaign/donate/", form_data(), **address).status_code == 429
    assert Donation.objects.count() == 0


def test_bank_transfer_shows_iban_reference_and_sepa_qr(client, open_campaign):
    response = donate(client, provider="bank_transfer", amount="40")
    donation = Donation.objects.get()
    assert donation.source == Donation.Source.BANK
    assert response["Location"] == f"/c/test-campaign/merci/{donation.reference}/"
    html = client.get(response["Location"]).content.decode()
    assert "FR76 3000 6000 0112 3456 7890 189" in html
    assert "AGRIFRPP" in html and "Association des lecteurs" in html
    assert donation.reference in html and "40,00\xa0€" in html
    assert "<svg" in html  # the EPC QR code
    # Pending money only once the donor confirms from the bank-details e-mail (test_pledge_verification).
    total = CampaignTotal.objects.get(campaign=open_campaign)
    assert (total.total_minor, total.pending_minor) == (0, 0)


def test_epc_qr_payload_carries_iban_amount_and_reference(open_campaign):
    import segno.helpers

    from campaigns.providers.bank_transfer import epc_qr_arguments

    donation = pledges.pledge_create(campaign=open_campaign, provider="bank_transfer", amount_minor=4050)
    # Encoded by segno's own EPC encoder, the one make_epc_qr uses for the SVG.
    payload = segno.helpers._make_epc_qr_data(**epc_qr_arguments(donation=donation)).decode()
    lines = payload.split("\n")
    assert lines[:4] == ["BCD", "002", "2", "SCT"]
    assert lines[4] == "AGRIFRPP" and lines[5] == "Association des lecteurs" and lines[6] == IBAN
    assert lines[7] == "EUR40.5" and lines[-1] == donation.reference


def test_bank_transfer_is_not_offered_without_an_iban(client, open_campaign, settings):
    settings.BANK_TRANSFER_IBAN = ""
    assert 'value="bank_transfer"' not in client.get("/c/test-campaign/").content.decode()
    assert donate(client, provider="bank_transfer").status_code == 400


def test_pending_pledges_expire_after_their_provider_delay(open_campaign, settings):
    settings.PLEDGE_EXPIRY_MINUTES = {"sandbox": 60, "stripe": 60, "bank": 30 * 24 * 60}
    sandbox = pledges.pledge_create(campaign=open_campaign, provider="sandbox", amount_minor=2500)
    bank = pledges.pledge_create(campaign=open_campaign, provider="bank_transfer", amount_minor=4000)
    assert pledges.pledges_expire(now=timezone.now() + timedelta(minutes=61)) == 1
    sandbox.refresh_from_db(), bank.refresh_from_db()
    assert sandbox.status == Donation.Status.EXPIRED and bank.status == Donation.Status.PENDING
    assert pledges.pledges_expire(now=timezone.now() + timedelta(days=31)) == 1
    bank.refresh_from_db()
    assert bank.status == Donation.Status.EXPIRED
    total = CampaignTotal.objects.get(campaign=open_campaign)
    assert (total.total_minor, total.pending_minor) == (0, 0)


def test_thank_you_page_shows_status_and_share_links(client, open_campaign):
    donation = pledges.pledge_create(campaign=open_campaign, provider="sandbox", amount_minor=2500)
    html = client.get(f"/c/test-campaign/merci/{donation.reference}/").content.decode()
    assert "Paiement en cours de confirmation" in html and 'hx-trigger="every 2s' in html
    assert "facebook.com/sharer" in html and "mailto:" in html
    factories.confirm(donation.pk)
    html = client.get(f"/c/test-campaign/merci/{donation.reference.lower()}/statut/").content.decode()
    assert "votre don compte dans le total" in html and "hx-trigger" not in html
    assert client.get("/c/test-campaign/merci/JG-AAAAAAA/").status_code == 404


def test_a_declined_pledge_says_nothing_was_charged_and_offers_to_give_again(client, open_campaign):
    donation = pledges.pledge_create(campaign=open_campaign, provider="sandbox", amount_minor=2500)
    factories.fail(donation.pk)
    page = text(client.get(f"/c/test-campaign/merci/{donation.reference}/?lang=en"))
    assert "The payment did not go through: nothing was charged or counted." in page
    assert "Give again" in page and 'href="/c/test-campaign/?lang=en"' in page


def test_sandbox_checkout_is_marked_as_test_mode_with_the_contract_buttons(client, open_campaign):
    donation = pledges.pledge_create(campaign=open_campaign, provider="sandbox", amount_minor=2500)
    html = client.get(f"/c/test-campaign/checkout/{donation.reference}/").content.decode()
    assert "MODE TEST" in html
    assert 'name="decision" value="confirm"' in html and 'name="decision" value="decline"' in html


def test_sandbox_checkout_refuses_an_unknown_decision(client, open_campaign):
    donation = pledges.pledge_create(campaign=open_campaign, provider="sandbox", amount_minor=2500)
    response = client.post(f"/c/test-campaign/checkout/{donation.reference}/", {"decision": "maybe"})
    assert response.status_code == 400
    assert "Confirmer le paiement" in text(response)
    donation.refresh_from_db()
    assert donation.status == Donation.Status.PENDING


@pytest.mark.parametrize("provider", ["sandbox", "bank_transfer"])
def test_providers_without_webhooks_of_their_own_refuse_them(client, provider):
    response = client.post(f"/hooks/{provider}/", b"{}", content_type="application/json")
    assert response.status_code == 404  # not an endpoint at all (issue #11: it answered 401)
    assert "receives no webhooks" in response.json()["error"]


def test_donor_wall_shows_first_names_or_anonyme_and_amounts_only_when_agreed(client, open_campaign):
    open_campaign.donor_wall = True
    open_campaign.save()
    shown = pledges.pledge_create(campaign=open_campaign, provider="sandbox", amount_minor=4200,
                                  donor_name="Marie Curie", message="Courage", public_amount=True)
    hidden = pledges.pledge_create(campaign=open_campaign, provider="sandbox", amount_minor=3100,
                                   donor_name="Pierre Curie", anonymous=True, message="Bravo")
    for pledge in (shown, hidden):
        factories.confirm(pledge.pk)
    html = client.get("/c/test-campaign/").content.decode()
    wall = html[html.index("donor-wall"):]
    assert "Marie" in wall and "Curie" not in wall and "42,00\xa0€" in wall and "Courage" in wall
    assert "Pierre" not in wall and "Anonyme" in wall and "31,00" not in wall and "Bravo" in wall


def test_page_says_how_much_comes_from_monthly_donors(client, open_campaign):
    monthly = pledges.pledge_create(campaign=open_campaign, provider="sandbox", amount_minor=1500,
                                    frequency=Donation.Frequency.MONTHLY, donor_email="a@example.org")
    once = pledges.pledge_create(campaign=open_campaign, provider="sandbox", amount_minor=9900)
    for pledge in (monthly, once):
        factories.confirm(pledge.pk)
    html = text(client.get("/c/test-campaign/"))
    assert "15,00\xa0€ viennent d'1 donateur mensuel." in html


def test_a_publishers_own_form_on_an_allowed_origin_may_post_without_a_token(open_campaign):
    open_campaign.allowed_origins = "https://www.journal.example"
    open_campaign.save()
    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/c/test-campaign/donate/", form_data(), HTTP_ORIGIN="https://www.journal.example")
    assert response.status_code in (302, 303)
    assert Donation.objects.count() == 1
    refused = strict.post("/c/test-campaign/donate/", form_data(email="x@example.org"),
                          HTTP_ORIGIN="https://evil.example")
    assert refused.status_code == 403
    assert Donation.objects.count() == 1


@pytest.mark.parametrize("htmx", [False, True])
def test_a_radio_groups_error_is_tied_to_its_group_for_screen_readers(client, live, htmx):
    import re

    headers = {"HX-Request": "true"} if htmx else {}
    response = client.post("/c/printemps/donate/", {"name": "A", "email": "a@example.org", "provider": "nope",
                                                    "frequency": "yearly"}, headers=headers)
    html = response.content.decode()
    for group, error_id in (("amounts", "amount-error"), ("frequency", "frequency-error"),
                            ("providers", "provider-error")):
        fieldset = re.search(rf'<fieldset class="{group} has-error"([^>]*)>', html)
        assert fieldset, group
        assert f'aria-describedby="{error_id}"' in fieldset.group(1), group
        assert f'id="{error_id}"' in html
