"""Reader donation flow: form → pledge → provider checkout → thank-you page.

Views validate and render; writes happen in services (pledges). Every page works without
JavaScript; with htmx the form swaps itself (errors next to their field) and the thank-you
page follows the pledge's status until the provider has confirmed it.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from urllib.parse import quote, urlencode

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from campaigns import money
from campaigns.clientip import client_address, post_rate_limited
from campaigns.forms import HONEYPOT_FIELD, DonationForm
from campaigns.models import Campaign, Donation, allowed_origins, campaign_text
from campaigns.providers import CHECKOUTS
from campaigns.providers.bank_transfer import bank_details, epc_qr_svg
from campaigns.providers.checkout import CheckoutUnavailable
from campaigns.providers.sandbox import sandbox_enabled
from campaigns.references import InvalidReference, reference_normalize
from campaigns.selectors import progress as selectors
from campaigns.selectors import tax_receipts as tax_selectors
from campaigns.selectors.donations import campaign_donor_wall, campaign_monthly_summary
from campaigns.services import pledges
from campaigns.services.pledge_verification import PledgeLimitReached
from campaigns.templatetags.jauge import progress_context
from campaigns.views.language import asked_language

logger = logging.getLogger(__name__)


def reader_language(request: HttpRequest, campaign: Campaign) -> str:
    """The campaign's language unless the reader asked for the other one (?lang=en)."""
    return asked_language(request) or campaign.locale


def _with_lang(url: str, lang: str, campaign: Campaign) -> str:
    return url if lang == campaign.locale else f"{url}?{urlencode({'lang': lang})}"


def _progress(campaign: Campaign, lang: str) -> dict:
    return progress_context(selectors.campaign_progress(slug=campaign.slug), lang)


DEFAULT_PRESETS = [1000, 2500, 5000, 10000]


def _presets(campaign: Campaign, lang: str) -> list[dict]:
    presets = campaign.preset_amounts_minor or DEFAULT_PRESETS
    return [
        {"value": _plain_amount(amount, campaign.currency),
         "display": money.format_money(amount, campaign.currency, lang)}
        for amount in presets
        if isinstance(amount, int) and campaign.min_amount_minor <= amount <= campaign.max_amount_minor
    ]


def _plain_amount(amount_minor: int, currency: str) -> str:
    """What the reader would type: "25" or "25.50" (parse_amount reads it back)."""
    value = money.to_decimal(amount_minor, currency)
    return str(value.to_integral_value()) if value == value.to_integral_value() else str(value)


def _embed_url(campaign: Campaign, lang: str) -> str:
    """The banner's live bar (it polls by itself once swapped in); absent, the static fragment stays."""
    try:
        return reverse("embed-banner", kwargs={"slug": campaign.slug}) + f"?variant=bar&lang={lang}"
    except NoReverseMatch:
        return ""


def closed_reason(campaign: Campaign) -> str:
    if campaign.status in (Campaign.Status.PAUSED, Campaign.Status.DRAFT):
        return campaign.status
    if campaign.status == Campaign.Status.ACTIVE and timezone.now() < campaign.starts_at:
        return "not_started"
    return "ended"


def _tax_context(campaign: Campaign, lang: str, form: DonationForm) -> dict | None:
    """The « ne vous coûte que » line: its text for the amount chosen (or an example before one
    is), and what the page's script needs to rewrite it, to the cent, as the amount changes."""
    rule = form.tax_rule
    if rule is None or campaign.currency != tax_selectors.CURRENCY:
        return None
    chosen = None
    if form.is_bound:
        try:
            chosen = money.parse_amount(form.data.get("amount", ""), campaign.currency)
        except money.AmountError:
            chosen = None
    example = next((p for p in campaign.preset_amounts_minor or DEFAULT_PRESETS if isinstance(p, int) and p > 0), 2500)
    markers = {"amount": "{amount}", "cost": "{cost}"}
    return {
        "text": tax_selectors.tax_line(rule=rule, amount_minor=chosen or example, currency=campaign.currency,
                                       locale=lang, chosen=chosen is not None),
        "config": json.dumps({
            "rate": rule.rate_percent, "ceiling": rule.ceiling_minor, "example": example,
            "chosen": tax_selectors.tax_line_template(chosen=True) % markers,
            "exampleText": tax_selectors.tax_line_template(chosen=False) % markers,
            "format": tax_selectors.money_format_parts(campaign.currency, lang),
        }),
        "rate": rule.rate_percent,
    }


def page_context(campaign: Campaign, lang: str, form: DonationForm | None = None) -> dict:
    """Everything /c/<slug>/ shows (also used to re-render the page around a form with errors)."""

    progress = _progress(campaign, lang)
    version = progress.get("version", 0)
    presets = _presets(campaign, lang)
    monthly = campaign_monthly_summary(campaign=campaign, version=version)
    form = form if form is not None else DonationForm(campaign=campaign)
    return {
        "tax": _tax_context(campaign, lang, form),
        "campaign": campaign,
        "text": campaign_text(campaign, lang),
        "lang": lang,
        "other_lang": next(code for code, _name in settings.LANGUAGES if code != lang),
        "progress": progress,
        "form": form,
        "presets": presets,
        "preset_values": [preset["value"] for preset in presets],
        "closed_reason": closed_reason(campaign),
        "monthly_total_display": money.format_money(monthly["total_minor"], campaign.currency, lang),
        "monthly": monthly,
        "wall": campaign_donor_wall(campaign=campaign, version=version),
        "min_display": money.format_money(campaign.min_amount_minor, campaign.currency, lang),
        "max_display": money.format_money(campaign.max_amount_minor, campaign.currency, lang),
        "honeypot": HONEYPOT_FIELD,
        "embed_url": _embed_url(campaign, lang),
    }


@require_safe
def campaign_page(request: HttpRequest, slug: str) -> HttpResponse:
    campaign = get_object_or_404(Campaign.objects.exclude(status=Campaign.Status.DRAFT), slug=slug)
    lang = reader_language(request, campaign)
    with translation.override(lang):
        context = page_context(campaign, lang)
        # The banner's "give" link carries the article it was clicked on.
        context["form"].initial["article"] = request.GET.get("article", "")[:1000]
        return render(request, "campaigns/page.html", context)


def _closed(request: HttpRequest, campaign: Campaign, lang: str) -> HttpResponse:
    return render(
        request,
        "campaigns/closed.html",
        {"campaign": campaign, "text": campaign_text(campaign, lang), "lang": lang,
         "progress": _progress(campaign, lang), "closed_reason": closed_reason(campaign)},
        status=403,
    )


def _form_response(
    request: HttpRequest, campaign: Campaign, form: DonationForm, lang: str, status: int
) -> HttpResponse:
    if request.htmx:
        # htmx swaps 2xx answers only: the form comes back in place, errors next to fields.
        return render(request, "campaigns/partials/_donate_form.html", page_context(campaign, lang, form))
    return render(request, "campaigns/page.html", page_context(campaign, lang, form), status=status)


def _rate_limit_response(request: HttpRequest, campaign: Campaign, form: DonationForm, lang: str) -> HttpResponse:
    if request.htmx:
        # htmx swaps 2xx answers only: the explanation appears in the form itself.
        form.add_error(None, _("Trop de tentatives depuis votre connexion : attendez une dizaine de "
                               "minutes avant de réessayer. Aucun don supplémentaire n'a été enregistré."))
        return _form_response(request, campaign, form, lang, status=429)
    response = render(request, "campaigns/429.html", {"campaign": campaign, "lang": lang}, status=429)
    response["Retry-After"] = "600"
    return response


def _csrf_refusal(request: HttpRequest, campaign: Campaign) -> HttpResponse | None:
    """Jauge's own form carries a CSRF token. A publisher's own form (the contract: publishers post
    these field names from their sites) cannot, so a POST whose Origin is one of the campaign's
    allowed embed origins is let through on that header alone: a pledge acts on no session or
    account, and the honeypot and the rate limit still apply. Anything else gets Django's check."""
    origin = request.META.get("HTTP_ORIGIN", "").rstrip("/")
    allowed = allowed_origins(campaign.origins)
    if origin and origin != "null" and ("*" in allowed or origin in allowed):
        return None
    return CsrfViewMiddleware(lambda _request: None).process_view(request, None, (), {})


@csrf_exempt
@require_POST
@vary_on_headers("HX-Request")
def donate(request: HttpRequest, slug: str) -> HttpResponse:
    campaign = get_object_or_404(Campaign, slug=slug)
    refusal = _csrf_refusal(request, campaign)
    if refusal is not None:
        return refusal
    lang = reader_language(request, campaign)
    with translation.override(lang):
        if not campaign.is_open:
            return _closed(request, campaign, lang)
        form = DonationForm(request.POST, campaign=campaign)
        # Every post counts, valid or not: a bot probing the form pays like one creating pledges (a reader
        # fixing typos stays far below DONATE_RATE_LIMIT); with the counters' cache down the gift goes through.
        if post_rate_limited(request, group="donate", rate_setting="DONATE_RATE_LIMIT"):
            return _rate_limit_response(request, campaign, form, lang)
        if form.is_spam:
            logger.info("honeypot filled on %s, pledge refused", campaign.slug)
            return render(request, "campaigns/refused.html", {"campaign": campaign, "lang": lang}, status=400)
        if not form.is_valid():
            return _form_response(request, campaign, form, lang, status=400)
        data = form.cleaned_data
        try:
            donation = pledges.pledge_create(
                campaign=campaign,
                provider=data["provider"],
                amount_minor=data["amount"],
                frequency=data["frequency"],
                donor_name=data["name"],
                donor_email=data["email"],
                anonymous=data["anonymous"],
                public_amount=data["public_amount"],
                message=data["message"],
                article_url=data["article"],
                locale=lang,
                client_address=client_address(request),
                donor_address=data.get("address", ""),
                donor_postal_code=data.get("postal_code", ""),
                donor_city=data.get("city", ""),
            )
        except PledgeLimitReached:
            form.add_error(None, _("Vous avez déjà plusieurs promesses de virement non confirmées : confirmez-les "
                                   "depuis l'e-mail reçu, ou attendez avant d'en faire une nouvelle."))
            return _form_response(request, campaign, form, lang, status=429)
        except pledges.PledgeError:
            return _closed(request, campaign, lang)
        provider = CHECKOUTS[data["provider"]]
        try:
            url = provider.start(donation=donation, base_url=settings.PUBLIC_URL)
        except CheckoutUnavailable as exc:
            logger.warning("checkout %s unavailable for %s: %s", provider.identifier, donation, exc)
            form.add_error(
                "provider",
                _("Ce moyen de paiement ne répond pas pour le moment. Réessayez, ou choisissez-en un autre."),
            )
            return _form_response(request, campaign, form, lang, status=503)
        if url.startswith("/"):
            url = _with_lang(url, lang, campaign)
        if request.htmx:
            return HttpResponseClientRedirect(url)
        return redirect(url)


def _pledge_or_404(slug: str, reference: str, **filters) -> Donation:
    try:
        reference = reference_normalize(reference)
    except InvalidReference:
        raise Http404("unknown reference") from None
    return get_object_or_404(
        Donation.objects.select_related("campaign"), reference=reference, campaign__slug=slug, **filters
    )


@require_http_methods(["GET", "POST"])
def sandbox_checkout(request: HttpRequest, slug: str, reference: str) -> HttpResponse:
    """The sandbox's hosted test checkout (what Stripe's page is for real money)."""
    if not sandbox_enabled():
        raise Http404("no sandbox on this site")
    donation = _pledge_or_404(slug, reference, source=Donation.Source.SANDBOX)
    campaign = donation.campaign
    lang = reader_language(request, campaign)
    thanks = _with_lang(reverse("donate-thanks", kwargs={"slug": slug, "reference": donation.reference}),
                        lang, campaign)
    with translation.override(lang):
        if request.method == "POST":
            decision = request.POST.get("decision", "")
            if decision not in ("confirm", "decline"):
                return render(request, "campaigns/checkout.html", _checkout_context(donation, lang, bad=True),
                              status=400)
            pledges.sandbox_decision_submit(donation_id=donation.pk, decision=decision)
            return redirect(thanks)
        if donation.status != Donation.Status.PENDING:
            return redirect(thanks)
        return render(request, "campaigns/checkout.html", _checkout_context(donation, lang))


def _checkout_context(donation: Donation, lang: str, bad: bool = False) -> dict:
    return {
        "donation": donation,
        "campaign": donation.campaign,
        "text": campaign_text(donation.campaign, lang),
        "lang": lang,
        "bad_decision": bad,
        "amount_display": money.format_money(donation.amount_minor, donation.currency, lang),
    }


# The fragment the banner's loader reads on the article page (README, "After a gift"). A fragment,
# not a query parameter: it never reaches the publisher's server, so its page caches are untouched.
THANKS_MARKER = "jauge-thanks"
_THANKED_STATUSES = (Donation.Status.PENDING, Donation.Status.CONFIRMED)


def article_back_url(donation: Donation, now: datetime) -> str:
    """The article the reader came from; while the gift stands, with the marker that turns the
    publication's banners into "Merci !" until now + the campaign's thank_days."""
    url = donation.article_url
    days = donation.campaign.thank_days
    if not url or not days or donation.status not in _THANKED_STATUSES:
        return url
    until = int((now + timedelta(days=days)).timestamp())
    return f"{url.split('#', 1)[0]}#{THANKS_MARKER}={donation.campaign.slug}.{until}"


def _thanks_context(request: HttpRequest, donation: Donation, lang: str) -> dict:
    campaign = donation.campaign
    page_url = settings.PUBLIC_URL + reverse("campaign", kwargs={"slug": campaign.slug})
    text = campaign_text(campaign, lang)
    share_text = _("J'ai soutenu « %(title)s »") % {"title": text.title}
    bank = None
    if donation.source == Donation.Source.BANK:
        bank = {**bank_details(), "qr_svg": epc_qr_svg(donation=donation)}
    return {
        "donation": donation,
        "campaign": campaign,
        "text": text,
        "lang": lang,
        "progress": _progress(campaign, lang),
        "amount_display": money.format_money(donation.amount_minor, donation.currency, lang),
        "monthly": donation.frequency == Donation.Frequency.MONTHLY,
        "pending": donation.status == Donation.Status.PENDING,
        "awaiting_donor_confirmation": donation.source == Donation.Source.BANK
        and donation.status == Donation.Status.PENDING and donation.pledge_confirmed_at is None,
        "back_url": article_back_url(donation, timezone.now()),
        "bank": bank,
        "status_url": _with_lang(
            reverse("donate-thanks-status", kwargs={"slug": campaign.slug, "reference": donation.reference}),
            lang, campaign,
        ),
        "page_url": page_url,
        "share": {
            "email": f"mailto:?subject={quote(share_text)}&body={quote(page_url)}",
            "x": f"https://x.com/intent/post?{urlencode({'text': share_text, 'url': page_url})}",
            "facebook": f"https://www.facebook.com/sharer/sharer.php?{urlencode({'u': page_url})}",
            "linkedin": f"https://www.linkedin.com/sharing/share-offsite/?{urlencode({'url': page_url})}",
            "bluesky": f"https://bsky.app/intent/compose?{urlencode({'text': f'{share_text} {page_url}'})}",
        },
    }


def _render_thanks(request: HttpRequest, slug: str, reference: str, template: str) -> HttpResponse:
    donation = _pledge_or_404(slug, reference)
    lang = reader_language(request, donation.campaign)
    with translation.override(lang):
        return render(request, template, _thanks_context(request, donation, lang))


@never_cache
def thanks(request: HttpRequest, slug: str, reference: str) -> HttpResponse:
    return _render_thanks(request, slug, reference, "campaigns/thanks.html")


@never_cache
def thanks_status(request: HttpRequest, slug: str, reference: str) -> HttpResponse:
    """The pledge's status and the live total: the thank-you page polls it while pending."""
    return _render_thanks(request, slug, reference, "campaigns/partials/_pledge_status.html")
