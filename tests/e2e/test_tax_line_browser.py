"""The donation page with tax receipts on, in Chromium: the « ne vous coûte que » line follows
the amount as the reader picks or types it, written exactly as the server writes it, and the page
(with its address fields) still has no serious accessibility violation."""

from __future__ import annotations

import pytest
from django.utils import translation
from playwright.sync_api import expect

from campaigns.selectors.tax_receipts import TaxRule, tax_line
from tests.e2e.test_accessibility_browser import AXE, axe_violations
from tests.tax_receipt_helpers import org_enable

pytestmark = [pytest.mark.postgres, pytest.mark.browser]
NBSP = "\u00a0"


def server_line(amount_minor: int, lang: str, *, chosen: bool = True, ceiling: int | None = None) -> str:
    with translation.override(lang):
        return tax_line(rule=TaxRule(rate_percent=66, ceiling_minor=ceiling), amount_minor=amount_minor,
                        currency="EUR", locale=lang, chosen=chosen)


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_tax_line_follows_the_amount_live_as_the_server_writes_it(transactional_db, campaign, live_server,
                                                                      page, lang):
    org_enable(ceiling_minor=500000)
    page.goto(f"{live_server.url}/c/test-campaign/?lang={lang}")
    line = page.locator("#tax-line")
    expect(line).to_have_text(server_line(1000, lang, chosen=False))
    page.get_by_label(f"25,00{NBSP}€" if lang == "fr" else "€25.00").check()
    expect(line).to_have_text(server_line(2500, lang))
    if lang == "fr":
        expect(line).to_have_text(f"Ce don de 25,00{NBSP}€ ne vous coûte que 8,50{NBSP}€ après réduction d'impôt")
    custom = page.locator('.custom-amount input[name="amount"]')
    for typed, minor in (("1234,56", 123456), ("25.55", 2555), ("7", 700), ("12345", 1234500)):
        custom.fill(typed)
        expect(line).to_have_text(server_line(minor, lang, ceiling=500000))
    custom.fill("abc")  # not an amount: back to the example
    expect(line).to_have_text(server_line(1000, lang, chosen=False))
    custom.fill("")  # the preset still checked counts again
    expect(line).to_have_text(server_line(2500, lang))


def test_the_donation_page_with_receipts_on_has_no_serious_accessibility_violation(transactional_db, campaign,
                                                                                   live_server, page):
    org_enable()
    page.goto(f"{live_server.url}/c/test-campaign/")
    expect(page.get_by_label("Code postal")).to_be_visible()
    expect(page.locator(".donate-progress .jauge [role=progressbar]")).to_be_visible(timeout=15_000)
    source = AXE.read_text()
    assert axe_violations(page, source) == []
    page.get_by_label("Adresse postale", exact=True).fill("3 rue de l'Estrapade")
    page.get_by_role("button", name="Donner").click()  # errors: name, e-mail, half an address
    expect(page.locator("#postal_code-error")).to_be_visible(timeout=15_000)
    assert axe_violations(page, source) == []
