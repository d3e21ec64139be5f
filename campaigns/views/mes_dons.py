"""*Mes dons*: a donor's gifts from the signed link of their receipt e-mails; the changes to a
monthly gift (POST, CSRF, htmx where present, whole pages without JS); a fresh link on request.

The views map outcomes to pages; the services decide and write (services/subscriptions.py).
"""

from __future__ import annotations

import contextlib
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from campaigns import money
from campaigns.clientip import post_rate_limited
from campaigns.models import Donation, Subscription
from campaigns.selectors import donor_gifts as gifts_selector
from campaigns.services import donor_links, mes_dons, subscriptions, tax_receipts
from campaigns.services.donor_links import DonorLinkError
from campaigns.services.subscriptions import SubscriptionChangeRefused
from campaigns.views.caching import keep_private
from campaigns.views.language import asked_language

logger = logging.getLogger(__name__)

# A refused link: tampered is a bad request, an old one is gone.
_LINK_STATUS = {"invalid": 400, "expired": 410}
_REFUSED_STATUS = {"unknown": 404, "amount": 400, "provider": 502, "unsupported": 409}


def _lang(request: HttpRequest, donor_key: str = "") -> str:
    lang = asked_language(request)
    if lang:
        return lang
    latest = Donation.objects.filter(donor_key=donor_key).select_related("campaign").order_by("-created_at").first() \
        if donor_key else None
    if latest is not None:
        return (latest.locale or latest.campaign.locale or settings.LANGUAGE_CODE)[:2]
    return settings.LANGUAGE_CODE


def _link_refused(request: HttpRequest, reason: str) -> HttpResponse:
    lang = _lang(request)
    with translation.override(lang):
        response = render(request, "campaigns/mes_dons_link.html", {"outcome": reason, "lang": lang},
                          status=_LINK_STATUS[reason])
    if request.htmx:
        # htmx swaps no 4xx answer: a link that expired while the page was open reloads the page,
        # which then says so.
        response["HX-Refresh"] = "true"
    return keep_private(response)


def _page(request: HttpRequest, token: str, donor_key: str, lang: str, *, notice: dict | None = None,
          status: int = 200) -> HttpResponse:
    gifts = gifts_selector.donor_gifts(donor_key=donor_key)
    context = {
        "token": token,
        "lang": lang,
        "gifts": gifts,
        "tax_receipts": [
            {"number": receipt.number, "year": receipt.year, "amount_minor": receipt.amount_minor,
             "currency": receipt.currency, "issued_at": receipt.issued_at,
             "url": tax_receipts.tax_receipt_url(receipt=receipt, lang=lang)}
            for receipt in gifts.tax_receipts
        ],
        "notice": notice,
        "link_days": settings.DONOR_LINK_DAYS,
    }
    with translation.override(lang):
        return keep_private(render(request, "campaigns/mes_dons.html", context, status=status))


@never_cache
@require_http_methods(["GET"])
def mes_dons_page(request: HttpRequest, token: str) -> HttpResponse:
    try:
        donor_key = donor_links.donor_key_from_token(token=token)
    except DonorLinkError as exc:
        return _link_refused(request, exc.reason)
    return _page(request, token, donor_key, _lang(request, donor_key))


def _success_text(action: str, subscription: Subscription, lang: str) -> str:
    if action == subscriptions.AMOUNT:
        amount = money.format_money(subscription.amount_minor, subscription.currency, lang)
        return _("Votre don mensuel passe à %(amount)s à partir de la prochaine échéance.") % {"amount": amount}
    return {
        subscriptions.PAUSE: _("Votre don mensuel est en pause : aucun prélèvement jusqu'à ce que vous le repreniez."),
        subscriptions.RESUME: _("Votre don mensuel reprend à la prochaine échéance."),
        subscriptions.CANCEL: _("Votre don mensuel est arrêté. Aucun prélèvement ne suivra. "
                                "Merci pour votre soutien !"),
    }[action]


def _refusal_text(refused: SubscriptionChangeRefused, subscription: Subscription | None, lang: str) -> str:
    nothing = _("Rien n'a été modifié.")
    if refused.reason == "amount":
        if refused.detail == "unchanged":
            return _("C'est déjà le montant de votre don mensuel.") + " " + nothing
        campaign = subscription.campaign if subscription else None
        if campaign is None:
            return _("Montant invalide.") + " " + nothing
        return _("Indiquez un montant entre %(min)s et %(max)s.") % {
            "min": money.format_money(campaign.min_amount_minor, campaign.currency, lang),
            "max": money.format_money(campaign.max_amount_minor, campaign.currency, lang),
        } + " " + nothing
    return {
        "unknown": _("Ce don mensuel n'est pas accessible depuis ce lien."),
        "canceled": _("Ce don mensuel est déjà arrêté.") + " " + nothing,
        "stale": _("Ce don mensuel a changé depuis l'affichage de cette page : vérifiez son état et "
                   "recommencez si besoin.") + " " + nothing,
        "paused": _("Ce don mensuel est déjà en pause.") + " " + nothing,
        "active": _("Ce don mensuel n'est pas en pause.") + " " + nothing,
        "unsupported": _("Ce don mensuel ne peut pas être modifié ici : écrivez-nous.") + " " + nothing,
        "provider": _("Stripe n'a pas pu enregistrer ce changement ; réessayez dans quelques minutes.") + " " + nothing,
    }[refused.reason]


@never_cache
@require_POST
@vary_on_headers("HX-Request")
def mes_dons_monthly(request: HttpRequest, token: str, pk: int) -> HttpResponse:
    """One change to one monthly gift; htmx gets the gift's fragment back, a plain form the page."""
    try:
        donor_key = donor_links.donor_key_from_token(token=token)
    except DonorLinkError as exc:
        return _link_refused(request, exc.reason)
    lang = _lang(request, donor_key)
    action = request.POST.get("action", "")
    with translation.override(lang):
        subscription = None
        try:
            subscription = subscriptions.donor_subscription(donor_key=donor_key, subscription_id=pk)
            try:
                version = int(request.POST.get("version", ""))
            except ValueError:
                raise SubscriptionChangeRefused("stale") from None
            # Unparseable: None, which the service refuses after saying whether the gift still runs.
            amount_minor = None
            if action == subscriptions.AMOUNT:
                with contextlib.suppress(money.AmountError):
                    amount_minor = money.parse_amount(request.POST.get("amount", ""), subscription.currency)
            subscription = subscriptions.subscription_change(
                donor_key=donor_key, subscription_id=pk, action=action, version=version, amount_minor=amount_minor)
            notice, status = {"ok": True, "text": _success_text(action, subscription, lang)}, 200
        except SubscriptionChangeRefused as refused:
            notice = {"ok": False, "text": _refusal_text(refused, subscription, lang)}
            status = _REFUSED_STATUS.get(refused.reason, 409)
        notice["subscription_id"] = pk
        monthly = gifts_selector.donor_monthly_gift(donor_key=donor_key, subscription_id=pk)
        if request.htmx and monthly is not None:
            # htmx swaps 2xx answers only: the outcome is shown inside the gift it is about.
            context = {"token": token, "lang": lang, "monthly": monthly, "notice": notice}
            return keep_private(render(request, "campaigns/partials/_monthly_gift.html", context))
    return _page(request, token, donor_key, lang, notice=notice, status=status)


@never_cache
@require_POST
def mes_dons_card(request: HttpRequest, token: str, pk: int) -> HttpResponse:
    """To Stripe's billing portal, where the donor changes the card of a monthly gift."""
    try:
        donor_key = donor_links.donor_key_from_token(token=token)
    except DonorLinkError as exc:
        return _link_refused(request, exc.reason)
    lang = _lang(request, donor_key)
    return_url = f"{settings.PUBLIC_URL}{reverse('mes-dons', kwargs={'token': token})}"
    try:
        url = subscriptions.subscription_portal_url(donor_key=donor_key, subscription_id=pk, return_url=return_url)
    except SubscriptionChangeRefused as refused:
        with translation.override(lang):
            notice = {"ok": False, "subscription_id": pk, "text": _refusal_text(refused, None, lang)}
        return _page(request, token, donor_key, lang, notice=notice, status=_REFUSED_STATUS.get(refused.reason, 409))
    return keep_private(HttpResponseRedirect(url, status=303))


@never_cache
@require_http_methods(["GET", "POST"])
def mes_dons_request(request: HttpRequest) -> HttpResponse:
    """Ask for a fresh link by e-mail. The answer is the same whether the address gave or not."""
    lang = _lang(request)
    outcome, status = "ask", 200
    if request.method == "POST":
        # With the counters' cache down the limit is skipped: a link e-mailed to its owner is a small risk.
        if post_rate_limited(request, group="donor-link", rate_setting="DONOR_LINK_RATE_LIMIT"):
            outcome, status = "limited", 429
        else:
            mes_dons.donor_link_request(email=request.POST.get("email", ""), locale=lang)
            outcome = "sent"
    with translation.override(lang):
        response = render(request, "campaigns/mes_dons_link.html", {"outcome": outcome, "lang": lang}, status=status)
    if status == 429:
        response["Retry-After"] = "3600"
    return keep_private(response)
