"""An editor, in Chromium: logs in, creates a campaign, sees the banner preview, copies a snippet,
enters a cheque, and watches the dashboard's chart and total change without reloading."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import expect

from campaigns.models import Campaign, CampaignTotal
from tests.factories import ARTIFACTS
from tests.staff_world import PASSWORD, ROLES, roles_ensure

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.browser]

NNBSP, NBSP = "\u202f", "\u00a0"


@pytest.fixture
def page(browser):
    """A French-speaking editor's browser (the admin follows Accept-Language)."""
    context = browser.new_context(locale="fr-FR")
    yield context.new_page()
    context.close()


def test_an_editor_runs_a_campaign_from_the_admin_and_sees_money_arrive_live(live_server, page):
    groups = roles_ensure()
    editor = User.objects.create_user("redaction", password=PASSWORD, is_staff=True)
    editor.groups.add(groups[ROLES.EDITORS], groups[ROLES.FINANCE])  # a small newsroom: one person, both roles
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.set_default_timeout(20_000)
    ARTIFACTS.mkdir(exist_ok=True)

    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "redaction")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("a[href='/dashboard/']")).to_be_visible()

    # Create the campaign (money typed in euros, not cents).
    page.goto(f"{live_server.url}/admin/campaigns/campaign/add/")
    page.locator("#id_title").press_sequentially("Campagne de Noël")
    expect(page.locator("#id_slug")).to_have_value("campagne-de-noel")  # prepopulated from the title
    page.select_option("#id_status", "active")
    start, end = timezone.localtime() - timedelta(days=2), timezone.localtime() + timedelta(days=20)
    page.fill("#id_starts_at_0", start.strftime("%Y-%m-%d"))
    page.fill("#id_starts_at_1", "00:00:00")
    page.fill("#id_ends_at_0", end.strftime("%Y-%m-%d"))
    page.fill("#id_ends_at_1", "23:59:59")
    page.fill("#id_goal_minor", "1 000")
    page.fill("#id_preset_amounts_minor", "10 ; 25 ; 50")
    page.fill("#id_min_amount_minor", "1")
    page.fill("#id_max_amount_minor", "1000")
    page.click("input[name=_continue]")
    page.screenshot(path=str(ARTIFACTS / "admin-campaign-saved.png"), full_page=True)
    assert not page.locator(".errornote").count(), page.locator("#content").inner_text()
    expect(page.locator("ul.messagelist")).to_be_visible()
    campaign = Campaign.objects.get(slug="campagne-de-noel")
    assert campaign.goal_minor == 100_000

    # The live preview shows the real banner.
    preview = page.locator("#jauge-preview")
    preview.scroll_into_view_if_needed()
    expect(page.frame_locator("#jauge-preview").locator("body")).to_contain_text("Campagne de Noël")

    # Copy the script snippet.
    copy = page.locator("button[data-jauge-copy='snippet-script']")
    copy.click()
    expect(copy).to_have_text("Copié !")
    clipboard = page.evaluate("navigator.clipboard.readText()")
    assert clipboard.startswith("<script src=") and "/embed/campagne-de-noel.js" in clipboard and "async" in clipboard
    page.screenshot(path=str(ARTIFACTS / "admin-campaign.png"), full_page=True)

    # The dashboard, open in this tab; the cheque is entered in another tab.
    page.goto(f"{live_server.url}/dashboard/campagne-de-noel/")
    expect(page.locator("#dash-total")).to_have_text(f"0,00{NBSP}€")
    expect(page.locator("#chart-cumulative")).to_have_attribute("data-total-minor", "0")
    page.evaluate("window.__sameDocument = true")

    desk = page.context.new_page()
    desk.goto(f"{live_server.url}/admin/campaigns/donation/manual/?campaign={campaign.pk}")
    desk.select_option("#id_method", "cheque")
    desk.fill("#id_amount", "150")
    desk.fill("#id_number", "0042")
    desk.fill("#id_donor_name", "Jeanne")
    desk.click("input[type=submit]")
    expect(desk.locator("ul.messagelist")).to_contain_text("150,00")
    assert CampaignTotal.objects.get(campaign=campaign).total_minor == 15_000

    expect(page.locator("#dash-total")).to_have_text(f"150,00{NBSP}€")
    expect(page.locator("#chart-cumulative")).to_have_attribute("data-total-minor", "15000")
    expect(page.locator("#dash-feed")).to_contain_text("Jeanne")
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    desk.close()
