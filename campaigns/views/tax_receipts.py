"""The donor's download of a French tax receipt, from the signed link of their e-mail.

A good link answers the PDF; a tampered one 400, an expired one 410, a cancelled receipt 410
with a link to the receipt that replaced it. The service checks the link; this view maps it.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from campaigns.selectors import tax_receipts as selectors
from campaigns.services import tax_receipts
from campaigns.services.tax_receipts import TaxReceiptLinkError
from campaigns.views.caching import keep_private
from campaigns.views.language import asked_language

_STATUS = {"invalid": 400, "expired": 410, "cancelled": 410}


def pdf_response(receipt, *, attachment: bool) -> HttpResponse:
    response = HttpResponse(selectors.tax_receipt_pdf(receipt), content_type="application/pdf")
    disposition = "attachment" if attachment else "inline"
    response["Content-Disposition"] = f'{disposition}; filename="{selectors.receipt_filename(receipt)}"'
    return response


@never_cache
@require_safe
def tax_receipt_download(request: HttpRequest, token: str) -> HttpResponse:
    lang = asked_language(request) or settings.LANGUAGE_CODE
    replacement_url = ""
    try:
        receipt = tax_receipts.tax_receipt_from_token(token=token)
        if receipt.cancelled_at is None:
            return keep_private(pdf_response(receipt, attachment=False))
        outcome = "cancelled"
        replacement = tax_receipts.receipt_in_force(receipt)
        if replacement is not None:
            replacement_url = tax_receipts.tax_receipt_url(receipt=replacement, lang=lang)
    except TaxReceiptLinkError as exc:
        receipt, outcome = None, exc.reason
    with translation.override(lang):
        return keep_private(render(request, "tax_receipts/link_error.html",
                               {"outcome": outcome, "receipt": receipt, "replacement_url": replacement_url,
                                "lang": lang}, status=_STATUS[outcome]))
