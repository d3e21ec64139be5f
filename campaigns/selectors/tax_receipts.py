"""Reads for French tax receipts: the donation page's « ne vous coûte que » line, the amount in
words, and the receipt's PDF (rendered from the immutable receipt alone, so the same receipt
always gives the same document: it is rendered on demand, never stored)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext
from num2words import num2words

from campaigns import money
from campaigns.models import Donation, TaxReceipt, TaxReceiptSettings

CURRENCY = "EUR"  # a French tax receipt is in euros
LEGAL_ARTICLES = {"200": "200", "200-press": "200", "238bis": "238 bis", "978": "978"}
PAYMENT_METHODS = {"cash": "Remise d'espèces", "cheque": "Chèque", "transfer": "Virement, prélèvement, carte bancaire",
                   "card": "Virement, prélèvement, carte bancaire", "other": "Autre"}


@dataclass(frozen=True)
class TaxRule:
    rate_percent: int
    ceiling_minor: int | None

    def cost_minor(self, amount_minor: int) -> int:
        """What the gift costs after the reduction. The reduction is rounded down to the cent
        (never promise more than the law gives); the page's script does the same in integers."""
        eligible = amount_minor if self.ceiling_minor is None else min(amount_minor, self.ceiling_minor)
        return amount_minor - eligible * self.rate_percent // 100


def tax_rule() -> TaxRule | None:
    """The reduction shown on donation pages, or None while receipts are off."""
    org = TaxReceiptSettings.current()
    if not org.enabled:
        return None
    return TaxRule(rate_percent=org.reduction_rate_percent, ceiling_minor=org.ceiling_minor)


def receipts_enabled() -> bool:
    return TaxReceiptSettings.current().enabled


def money_format_parts(currency: str, locale: str) -> dict:
    """How Babel writes this currency in this locale, cut into the pieces the page's script
    needs to write amounts exactly as the server does (`1 234 567,89 €`, `€1,234,567.89`)."""
    digits = money.minor_digits(currency)
    sample = money.format_money(123456789 * 10**digits, currency, locale)  # 123,456,789 and the decimals
    first = re.search(r"\d", sample).start()
    last = max(m.end() for m in re.finditer(r"\d", sample))
    body = sample[first:last]
    decimal = body[-digits - 1] if digits else ""
    group = body[3] if not body[3].isdigit() else ""
    return {"prefix": sample[:first], "suffix": sample[last:], "group": group, "decimal": decimal, "digits": digits}


def tax_line(*, rule: TaxRule, amount_minor: int, currency: str, locale: str, chosen: bool) -> str:
    """« Ce don de 25,00 € ne vous coûte que 8,50 € après réduction d'impôt » (chosen), or the
    same as an example (« Un don de … ») before the reader picks an amount."""
    values = {"amount": money.format_money(amount_minor, currency, locale),
              "cost": money.format_money(rule.cost_minor(amount_minor), currency, locale)}
    return tax_line_template(chosen=chosen) % values


def tax_line_template(*, chosen: bool) -> str:
    if chosen:
        return gettext("Ce don de %(amount)s ne vous coûte que %(cost)s après réduction d'impôt")
    return gettext("Un don de %(amount)s ne vous coûte que %(cost)s après réduction d'impôt")


def amount_in_words_fr(amount_minor: int) -> str:
    """`2550` → « vingt-cinq euros et cinquante centimes »; `100000000` → « un million d'euros »."""
    euros, cents = divmod(amount_minor, 100)
    parts = []
    if euros:
        words = num2words(euros, lang="fr")
        if words.endswith(("million", "millions", "milliard", "milliards")):
            unit = "d'euros"
        else:
            unit = "euro" if euros == 1 else "euros"
        parts.append(f"{words} {unit}")
    if cents:
        parts.append(f"{num2words(cents, lang='fr')} centime{'s' if cents > 1 else ''}")
    return " et ".join(parts) or "zéro euro"


def _date_fr(value) -> str:
    return value.strftime("%d/%m/%Y")


def receipt_context(receipt: TaxReceipt) -> dict:
    issuer = receipt.issuer
    replaced_by = TaxReceipt.objects.filter(replaces=receipt).values_list("number", flat=True).first()
    return {
        "receipt": receipt,
        "issuer": issuer,
        "article": LEGAL_ARTICLES.get(issuer.get("legal_basis", ""), "200"),
        "press": issuer.get("legal_basis") == "200-press",
        "amount": money.format_money(receipt.amount_minor, receipt.currency, "fr"),
        "amount_words": amount_in_words_fr(receipt.amount_minor),
        "gift_date": _date_fr(receipt.gift_date),
        "issued_on": _date_fr(timezone.localtime(receipt.issued_at)),
        "cancelled_on": _date_fr(timezone.localtime(receipt.cancelled_at)) if receipt.cancelled_at else "",
        "replaced_by": replaced_by or "",
        "method": receipt.payment_method,
        "method_label": PAYMENT_METHODS.get(receipt.payment_method, "Autre"),
        "yearly": receipt.kind == TaxReceipt.Kind.YEARLY,
        "instalments": receipt.lines.count() if receipt.kind == TaxReceipt.Kind.YEARLY else 0,
    }


def tax_receipt_html(receipt: TaxReceipt) -> str:
    return render_to_string("tax_receipts/receipt.html", receipt_context(receipt))


def tax_receipt_pdf(receipt: TaxReceipt) -> bytes:
    # Imported here, not at the top: WeasyPrint loads Pango when imported, and a machine without
    # it must lose the PDFs only, never the donation page or the webhooks that import this module.
    from weasyprint import HTML

    return HTML(string=tax_receipt_html(receipt)).write_pdf()


def receipt_for_donation(donation: Donation) -> TaxReceipt | None:
    """The one-off gift's receipt in force, if any."""
    return TaxReceipt.objects.active().filter(kind=TaxReceipt.Kind.GIFT, donation=donation).first()


def receipt_filename(receipt: TaxReceipt) -> str:
    return f"recu-fiscal-{receipt.number}.pdf"
