"""Verified promises: a bank-transfer pledge is public pending money only once its donor confirmed
it from the e-mail that carries the bank details (signed, expiring, single-use link), never more
than the campaign's cap; limits per e-mail and per client address; editors void pledges in bulk."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.core import mail, signing
from django.utils import timezone

from campaigns.models import AuditLog, Campaign, CampaignTotal, Donation
from campaigns.services import pledge_verification, pledges
from campaigns.services.campaigns import campaign_save
from campaigns.services.reconcile import campaign_reconcile
from tests.test_donate import IBAN, donate, text

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _bank_settings(settings):
    settings.DONATE_RATE_LIMIT = "1000/m"
    settings.PAYMENT_PROVIDERS = ["sandbox", "bank_transfer"]
    settings.BANK_TRANSFER_IBAN = IBAN
    settings.BANK_TRANSFER_BIC = "AGRIFRPP"
    settings.BANK_TRANSFER_HOLDER = "Association des lecteurs"
    settings.PLEDGE_UNCONFIRMED_MAX_PER_EMAIL = 100
    settings.PLEDGE_UNCONFIRMED_MAX_PER_ADDRESS = 100


@pytest.fixture
def big_campaign(campaign) -> Campaign:
    campaign.max_amount_minor = 10_000_000  # 100 000,00 €, the promises
    campaign.goal_minor = 2_500_000
    campaign.save()
    return campaign


def _public(client, slug: str = "test-campaign") -> dict:
    return client.get(f"/api/campaigns/{slug}/progress.json").json()


def _link_of(donation: Donation) -> str:
    """Send the bank-details e-mail (what the task does) and return the confirmation path in it."""
    mail.outbox.clear()
    assert pledge_verification.pledge_details_send(donation_id=donation.pk)
    message = mail.outbox[0]
    assert message.to == [donation.donor_email]
    assert IBAN[:4] in message.body and donation.reference in message.body
    url = re.search(r"(http\S+/promesse/\S+/)", message.body).group(1)
    return url.split("//", 1)[1].split("/", 1)[1].join(["/", ""])


def test_ten_unconfirmed_bank_pledges_leave_pending_at_zero(client, big_campaign):
    for index in range(10):
        response = donate(client, provider="bank_transfer", amount="100000", email=f"r{index}@example.org")
        assert response.status_code == 302
    assert Donation.objects.filter(source="bank", status="pending").count() == 10
    assert _public(client)["pending_minor"] == 0
    assert CampaignTotal.objects.get(campaign=big_campaign).pending_minor == 0
    assert "en attente de virement" not in client.get("/embed/test-campaign/").content.decode()
    assert campaign_reconcile(campaign=big_campaign) == []


def test_a_confirmed_pledge_shows_once_and_the_link_is_single_use(client, big_campaign,
                                                                  django_capture_on_commit_callbacks):
    donate(client, provider="bank_transfer", amount="40")
    pledge = Donation.objects.get()
    path = _link_of(pledge)

    # Opening the link asks (a mail scanner following links confirms nothing).
    page = client.get(path)
    assert page.status_code == 200 and "Je confirme ma promesse" in text(page)
    assert _public(client)["pending_minor"] == 0

    with django_capture_on_commit_callbacks(execute=True):
        confirmed = client.post(path)
    assert confirmed.status_code == 200 and "votre promesse est confirmée" in text(confirmed)
    assert _public(client)["pending_minor"] == 4000

    again = client.post(path)
    assert again.status_code == 409 and "ne sert qu'une fois" in text(again)
    assert client.get(path).status_code == 409
    assert _public(client)["pending_minor"] == 4000
    assert campaign_reconcile(campaign=big_campaign) == []


def test_a_tampered_link_is_refused(client, big_campaign):
    donate(client, provider="bank_transfer", amount="40")
    path = _link_of(Donation.objects.get())
    token = path.rstrip("/").rsplit("/", 1)[1]
    other_pledge = str(Donation.objects.get().pk + 1)
    forged = other_pledge + token[token.index(":"):]
    for bad in (forged, token[:-1] + ("A" if token[-1] != "A" else "B"), "garbage"):
        response = client.post(f"/c/test-campaign/promesse/{bad}/")
        assert response.status_code == 400, bad
        assert "n'est pas valide" in text(response)
    # A link of this campaign's pledge under another campaign's address is refused too.
    assert client.post(path.replace("test-campaign", "autre")).status_code == 400
    assert _public(client)["pending_minor"] == 0


def test_the_link_expires(client, big_campaign, settings):
    settings.PLEDGE_CONFIRM_DAYS = 2
    donate(client, provider="bank_transfer", amount="40")
    pledge = Donation.objects.get()

    class ThreeDaysAgo(signing.TimestampSigner):
        def timestamp(self):
            return signing.b62_encode(int(time.time()) - 3 * 86400)

    token = ThreeDaysAgo(salt="jauge.pledge-confirm").sign(str(pledge.pk))
    response = client.post(f"/c/test-campaign/promesse/{token}/")
    assert response.status_code == 410 and "a expiré" in text(response)
    assert _public(client)["pending_minor"] == 0


def test_the_public_pending_figure_is_capped_per_campaign(client, big_campaign, django_capture_on_commit_callbacks):
    # Goal 25 000 €: the default cap is 25 %, 6 250 €; 10 confirmed promises of 1 000 € are 10 000 €.
    for index in range(10):
        donate(client, provider="bank_transfer", amount="1000", email=f"r{index}@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        for pledge in Donation.objects.all():
            pledge_verification.pledge_confirm_by_donor(
                token=pledge_verification.pledge_confirm_token(donation=pledge))
    assert CampaignTotal.objects.get(campaign=big_campaign).pending_minor == 1_000_000  # editors see it all
    assert _public(client)["pending_minor"] == 625_000

    big_campaign.pending_cap_percent = 10
    with django_capture_on_commit_callbacks(execute=True):
        campaign_save(campaign=big_campaign)
    assert _public(client)["pending_minor"] == 250_000


def test_an_unconfirmed_pledge_that_gets_paid_or_voided_never_touches_pending(client, big_campaign, django_user_model):
    donate(client, provider="bank_transfer", amount="40", email="a@example.org")
    donate(client, provider="bank_transfer", amount="50", email="b@example.org")
    first, second = Donation.objects.order_by("pk")
    pledge_verification.pledge_confirm_by_donor(token=pledge_verification.pledge_confirm_token(donation=second))
    assert CampaignTotal.objects.get(campaign=big_campaign).pending_minor == 5000

    editor = django_user_model.objects.create_superuser("ed", "ed@example.org", "pw")
    client.force_login(editor)
    response = client.post("/admin/campaigns/donation/", {
        "action": "void_pledges", "_selected_action": [first.pk, second.pk]})
    assert response.status_code == 302
    first.refresh_from_db(), second.refresh_from_db()
    assert first.status == second.status == Donation.Status.FAILED
    assert CampaignTotal.objects.get(campaign=big_campaign).pending_minor == 0
    audits = AuditLog.objects.filter(action=AuditLog.Action.PLEDGE_VOID)
    assert sorted(audits.values_list("donation_id", flat=True)) == [first.pk, second.pk]
    assert all(a.actor_username == "ed" for a in audits)
    # A voided pledge's link confirms nothing.
    response = client.post(f"/c/test-campaign/promesse/{pledge_verification.pledge_confirm_token(donation=first)}/")
    assert response.status_code == 409
    assert campaign_reconcile(campaign=big_campaign) == []


def test_editors_see_unconfirmed_pledges_in_the_admin(client, big_campaign, django_user_model):
    donate(client, provider="bank_transfer", amount="40")
    pledge = Donation.objects.get()
    client.force_login(django_user_model.objects.create_superuser("ed", "ed@example.org", "pw"))
    listing = client.get("/admin/campaigns/donation/?pledge=unconfirmed").content.decode()
    assert pledge.reference in listing
    assert pledge.reference not in client.get("/admin/campaigns/donation/?pledge=confirmed").content.decode()


def test_unconfirmed_pledges_are_limited_per_email_and_per_address(client, big_campaign, settings):
    settings.PLEDGE_UNCONFIRMED_MAX_PER_EMAIL = 2
    settings.PLEDGE_UNCONFIRMED_MAX_PER_ADDRESS = 3
    for _ in range(2):
        assert donate(client, provider="bank_transfer", amount="40").status_code == 302
    refused = donate(client, provider="bank_transfer", amount="40")
    assert refused.status_code == 429
    assert "promesses de virement non confirmées" in text(refused)
    # Another e-mail from the same address: one more, then the address limit.
    assert donate(client, provider="bank_transfer", amount="40", email="autre@example.org").status_code == 302
    assert donate(client, provider="bank_transfer", amount="40", email="trois@example.org").status_code == 429
    # Another address is not limited by this one; card-like providers are not limited at all.
    other = client.__class__(REMOTE_ADDR="192.0.2.9")
    assert donate(other, provider="bank_transfer", amount="40", email="trois@example.org").status_code == 302
    assert donate(client, provider="sandbox", amount="40").status_code == 302
    assert Donation.objects.filter(source="bank").count() == 4

    # Confirming frees a slot: the limit is on promises nobody confirmed.
    pledge = Donation.objects.filter(source="bank", donor_email="marie@example.org").first()
    pledge_verification.pledge_confirm_by_donor(token=pledge_verification.pledge_confirm_token(donation=pledge))
    assert donate(client, provider="bank_transfer", amount="40").status_code == 302


def test_old_unconfirmed_pledges_leave_the_window(big_campaign, settings):
    settings.PLEDGE_UNCONFIRMED_MAX_PER_EMAIL = 1
    pledges.pledge_create(campaign=big_campaign, provider="bank_transfer", amount_minor=4000,
                          donor_email="m@example.org")
    with pytest.raises(pledge_verification.PledgeLimitReached):
        pledges.pledge_create(campaign=big_campaign, provider="bank_transfer", amount_minor=4000,
                              donor_email="m@example.org")
    Donation.objects.update(created_at=timezone.now() - timedelta(hours=25))
    pledges.pledge_create(campaign=big_campaign, provider="bank_transfer", amount_minor=4000,
                          donor_email="m@example.org")


def test_bank_details_lost_with_their_task_are_sent_by_the_sweep_once(big_campaign):
    # The pledge's commit enqueues the e-mail; here no callback runs, as when the broker is down.
    pledge = pledges.pledge_create(campaign=big_campaign, provider="bank_transfer", amount_minor=4000,
                                   donor_email="m@example.org")
    pledges.pledges_expire()
    assert mail.outbox == []  # too recent: its own task may still be on its way
    Donation.objects.filter(pk=pledge.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    pledges.pledges_expire()
    pledges.pledges_expire()
    assert [m.to for m in mail.outbox] == [["m@example.org"]]
    assert not pledge_verification.pledge_details_send(donation_id=pledge.pk)  # a late task sends nothing
    assert len(mail.outbox) == 1


def test_editors_set_the_pending_cap_in_the_campaign_form(db):
    from django.test import Client

    from tests.staff_world import staff_world
    from tests.test_admin_campaigns import _form

    editor = Client()
    editor.force_login(staff_world()["editor"])
    assert editor.post("/admin/campaigns/campaign/add/", _form()).status_code == 302
    assert Campaign.objects.get(slug="mai-juin").pending_cap_percent == 25  # left empty: the default
    assert editor.post("/admin/campaigns/campaign/add/", _form(slug="b", pending_cap_percent="10")).status_code == 302
    assert Campaign.objects.get(slug="b").pending_cap_percent == 10
    refused = editor.post("/admin/campaigns/campaign/add/", _form(slug="c", pending_cap_percent="150"))
    assert refused.status_code == 200 and "pending_cap_percent" in refused.context["adminform"].form.errors
