"""What every reader gets: axe-core, run by Chromium, finds no serious or critical violation on the
donation page (as served and with its form's errors shown), the sandbox checkout, the thank-you page,
the banner frame in each variant and *Mes dons* (with a monthly gift, and the page that asks for a
fresh link), in French and in English.

axe-core is vendored in tests/e2e/axe/ (see its README); it is evaluated in the page through the
DevTools protocol, so no page's Content-Security-Policy has to let it in.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from playwright.sync_api import expect

from campaigns.models import Donation, Subscription
from campaigns.services import donor_links, pledges
from tests import factories

pytestmark = [pytest.mark.postgres, pytest.mark.browser]

AXE = Path(__file__).resolve().parent / "axe" / "axe.min.js"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
BLOCKING = ("serious", "critical")
LANGS = ("fr", "en")


@pytest.fixture(scope="module")
def axe_source() -> str:
    source = AXE.read_bytes()
    assert hashlib.sha256(source).hexdigest() == AXE_SHA256, "tests/e2e/axe/axe.min.js is not the vendored 4.14.1"
    return source.decode()


def axe_violations(page, source: str) -> list[str]:
    """axe's serious and critical violations on the page as it stands, one readable line each."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(source)
    results = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} — "
        + "; ".join(node["target"][0] if isinstance(node["target"][0], str) else str(node["target"])
                    for node in violation["nodes"][:5])
        for violation in results["violations"]
        if violation["impact"] in BLOCKING
    ]


@pytest.fixture
def gift(transactional_db, campaign):
    donation = pledges.pledge_create(campaign=campaign, provider="sandbox", amount_minor=2500,
                                     donor_name="Marie Curie", donor_email="marie@example.org",
                                     article_url="https://www.journal.example/un-article")
    factories.confirm(donation.pk)
    return donation


@pytest.mark.parametrize("lang", LANGS)
def test_the_donation_page_has_no_serious_accessibility_violation(live_server, gift, page, axe_source, lang):
    page.goto(f"{live_server.url}/c/test-campaign/?lang={lang}")
    # The live bar that htmx swaps in is what readers end up with: check that one.
    expect(page.locator(".donate-progress .jauge [role=progressbar]")).to_be_visible(timeout=15_000)
    assert axe_violations(page, axe_source) == []

    # With the form's errors shown (each next to its field, announced).
    page.get_by_role("button", name="Donner" if lang == "fr" else "Give").click()
    expect(page.locator(".donate-form [role=alert]").first).to_be_visible(timeout=15_000)
    assert axe_violations(page, axe_source) == []


@pytest.mark.parametrize("lang", LANGS)
def test_the_thank_you_page_has_no_serious_accessibility_violation(live_server, gift, page, axe_source, lang):
    page.goto(f"{live_server.url}/c/test-campaign/merci/{gift.reference}/?lang={lang}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Merci !" if lang == "fr" else "Thank you!")
    expect(page.locator(".back-to-article a")).to_be_visible()
    assert axe_violations(page, axe_source) == []


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("variant", ["banner", "bar", "compact", "thanks"])
def test_the_banner_frame_has_no_serious_accessibility_violation(live_server, gift, page, axe_source, variant, lang):
    page.goto(f"{live_server.url}/embed/test-campaign/frame/?variant={variant}&lang={lang}")
    expect(page.locator(".jauge [role=progressbar]")).to_be_visible()
    assert axe_violations(page, axe_source) == []


@pytest.mark.parametrize("lang", LANGS)
def test_the_sandbox_checkout_has_no_serious_accessibility_violation(live_server, transactional_db, campaign, page,
                                                                    axe_source, lang):
    donation = pledges.pledge_create(campaign=campaign, provider="sandbox", amount_minor=2500)
    page.goto(f"{live_server.url}/c/test-campaign/checkout/{donation.reference}/?lang={lang}")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert axe_violations(page, axe_source) == []


@pytest.fixture
def donor_link(gift, campaign) -> str:
    """Marie's *Mes dons*: the one-off gift above and a monthly gift with one instalment."""
    monthly = pledges.pledge_create(campaign=campaign, provider="stripe", amount_minor=1500,
                                    donor_email="marie@example.org", frequency=Donation.Frequency.MONTHLY)
    factories.confirm(monthly.pk)
    subscription = Subscription.objects.create(campaign=campaign, source="stripe", external_id="sub_1",
                                               customer_id="cus_1", amount_minor=1500, currency="EUR")
    Donation.objects.filter(pk=monthly.pk).update(subscription=subscription)
    return f"/mes-dons/{donor_links.donor_link_token(donor_key=gift.donor_key)}/"


@pytest.mark.parametrize("lang", LANGS)
def test_mes_dons_has_no_serious_accessibility_violation(live_server, donor_link, page, axe_source, lang):
    page.goto(f"{live_server.url}{donor_link}?lang={lang}")
    expect(page.locator(".monthly-gift")).to_be_visible()
    assert axe_violations(page, axe_source) == []

    # With a refusal shown inside the gift (htmx) and the cancel confirmation open.
    page.locator(".monthly-gift input[name=amount]").fill("abc")
    page.locator(".monthly-gift input[name=amount]").press("Enter")
    expect(page.locator(".monthly-gift [role=alert]")).to_be_visible()
    page.locator(".monthly-cancel summary").click()
    assert axe_violations(page, axe_source) == []

    page.goto(f"{live_server.url}/mes-dons/?lang={lang}")
    assert axe_violations(page, axe_source) == []
    page.goto(f"{live_server.url}/mes-dons/not-a-link/?lang={lang}")
    expect(page.get_by_role("alert")).to_be_visible()
    assert axe_violations(page, axe_source) == []
