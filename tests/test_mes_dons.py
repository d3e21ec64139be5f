"""*Mes dons*: the signed link in every receipt opens a donor's gifts; a monthly donor changes the
amount, pauses, resumes, cancels and changes the card through Stripe's API (a fake Stripe over real
HTTP records each call and its idempotency key); every change is audited; a tampered or expired
link, a second cancel, a stale form, a bad amount or a Stripe error changes nothing."""

from __future__ import annotations

import html
import re
import time
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail, signing

from campaigns.models import AuditLog, Donation, PaymentEvent, Subscription
from campaigns.providers import stripe as stripe_provider
from campaigns.services import donor_links, ledger, mes_dons, pledges, receipts, subscriptions
from campaigns.tasks import send_donor_link, sync_subscription
from tests import factories
from tests.stripe_fake import fake_stripe_server
from tests.test_stripe import WEBHOOK_SECRET, post_stripe, stripe_event, total
from tests.threads import all_at_once

pytestmark = pytest.mark.django_db

EMAIL = "marie@example.org"


def invoice_paid(event_id: str, invoice_id: str, pledge: Donation, reason: str, *, amount: int = 1500) -> bytes:
    metadata = {"pledge_id": str(pledge.pk), "reference": pledge.reference, "campaign": pledge.campaign.slug}
    return stripe_event(event_id, "invoice.paid", {
        "id": invoice_id, "object": "invoice", "amount_paid": amount, "currency": "eur",
        "billing_reason": reason, "customer": "cus_1", "customer_email": EMAIL, "customer_name": "Marie Curie",
        "parent": {"type": "subscription_details",
                   "subscription_details": {"subscription": "sub_1", "metadata": metadata}},
    })


@pytest.fixture
def fake_stripe(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_jauge"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.PAYMENT_PROVIDERS = ["stripe", "sandbox"]
    with fake_stripe_server() as server:
        yield server


@pytest.fixture
def monthly(client, campaign, fake_stripe) -> Subscription:
    """Marie gives 15 € a month through Stripe: two instalments paid."""
    pledge = pledges.pledge_create(campaign=campaign, provider="stripe", amount_minor=1500, donor_email=EMAIL,
                                   donor_name="Marie Curie", frequency=Donation.Frequency.MONTHLY)
    post_stripe(client, invoice_paid("evt_in_1", "in_1", pledge, "subscription_create"))
    post_stripe(client, invoice_paid("evt_in_2", "in_2", pledge, "subscription_cycle"))
    factories.process_all()
    return Subscription.objects.get()


@pytest.fixture
def link(monthly) -> str:
    return f"/mes-dons/{donor_links.donor_link_token(donor_key=ledger.donor_key_for(email=EMAIL))}/"


def _text(response) -> str:
    return html.unescape(response.content.decode())


def _change(client, link: str, subscription: Subscription, action: str, **form):
    data = {"action": action, "version": str(subscription.version), **form}
    return client.post(f"{link}mensuel/{subscription.pk}/", data)


def test_each_paid_invoice_is_tied_to_its_subscription_and_customer(monthly):
    assert (monthly.source, monthly.external_id, monthly.customer_id) == ("stripe", "sub_1", "cus_1")
    assert (monthly.amount_minor, monthly.currency, monthly.status, monthly.version) == (1500, "EUR", "active", 1)
    assert sorted(monthly.donations.values_list("status", flat=True)) == ["confirmed", "confirmed"]


def test_the_receipt_email_carries_a_link_that_opens_the_donors_gifts(client, campaign, monthly):
    once = pledges.pledge_create(campaign=campaign, provider="sandbox", amount_minor=4200, donor_email=EMAIL)
    factories.confirm(once.pk)
    factories.refund(once.pk, amount_minor=1000)
    other = pledges.pledge_create(campaign=campaign, provider="sandbox", amount_minor=777, donor_email="x@example.org")
    factories.confirm(other.pk)
    assert receipts.receipts_send_due() == 4
    mine = [m for m in mail.outbox if m.to == [EMAIL]]
    assert len(mine) == 3
    for message in mine:
        assert "Mes dons" in message.body
    url = re.search(r"http://\S+/mes-dons/\S+/", mine[0].body).group(0)
    page = client.get(url.split("://", 1)[1].split("/", 1)[1].join(["/", ""]))
    assert page.status_code == 200
    body = _text(page)
    assert "Campagne de test — 15,00\xa0€ par mois" in body
    assert "42,00\xa0€" in body and "10,00\xa0€" in body  # the one-off gift and its refund
    assert "7,77" not in body  # another donor's gift
    assert page["Referrer-Policy"] == "same-origin" and "no-cache" in page["Cache-Control"]


def test_a_tampered_link_shows_nothing(client, link):
    for bad in (link[:-3] + "xx/", link.replace("mes-dons/e", "mes-dons/d"), "/mes-dons/nope/"):
        response = client.get(bad)
        assert response.status_code == 400, bad
        assert "15,00" not in _text(response) and "n'est pas valide" in _text(response)


def test_an_expired_link_shows_nothing_and_offers_a_fresh_one(client, monthly, settings):
    settings.DONOR_LINK_DAYS = 30
    with mock.patch("django.core.signing.time.time", return_value=time.time() - timedelta(days=31).total_seconds()):
        token = donor_links.donor_link_token(donor_key=monthly.donations.first().donor_key)
    response = client.get(f"/mes-dons/{token}/")
    assert response.status_code == 410
    body = _text(response)
    assert "a expiré" in body and "15,00" not in body and 'name="email"' in body
    # Nor can it change anything.
    assert _change(client, f"/mes-dons/{token}/", monthly, "cancel").status_code == 410
    assert Subscription.objects.get().status == "active"


def test_pausing_and_resuming_go_through_stripe_with_their_keys_and_are_audited(client, link, monthly, fake_stripe):
    response = _change(client, link, monthly, "pause")
    assert response.status_code == 200 and "est en pause" in _text(response)
    monthly.refresh_from_db()
    assert (monthly.status, monthly.version) == ("paused", 2)
    response = _change(client, link, monthly, "resume")
    monthly.refresh_from_db()
    assert (monthly.status, monthly.version) == ("active", 3)
    assert [(r["method"], r["path"], r["form"], r["key"]) for r in fake_stripe.requests] == [
        ("POST", "/v1/subscriptions/sub_1", {"pause_collection[behavior]": "void"}, f"jauge-sub-{monthly.pk}-v1-pause"),
        ("POST", "/v1/subscriptions/sub_1", {"pause_collection": ""}, f"jauge-sub-{monthly.pk}-v2-resume"),
    ]
    entries = list(AuditLog.objects.order_by("pk"))
    assert [e.action for e in entries] == ["monthly_pause", "monthly_resume"]
    assert entries[0].actor_username == subscriptions.DONOR_ACTOR
    assert entries[0].details["before"] == {"status": "active", "amount_minor": 1500}
    assert entries[0].details["after"] == {"status": "paused", "amount_minor": 1500}
    assert entries[0].details["idempotency_key"] == f"jauge-sub-{monthly.pk}-v1-pause"
    assert EMAIL not in str(entries[0].details)  # the audit log holds no personal data


def test_a_new_amount_sets_the_items_price_at_stripe(client, link, monthly, fake_stripe):
    response = _change(client, link, monthly, "amount", amount="20,50")
    assert response.status_code == 200 and "passe à 20,50\xa0€" in _text(response)
    get, modify = fake_stripe.requests
    assert (get["method"], get["path"]) == ("GET", "/v1/subscriptions/sub_1")
    assert (modify["method"], modify["path"], modify["key"]) == (
        "POST", "/v1/subscriptions/sub_1", f"jauge-sub-{monthly.pk}-v1-amount-2050")
    assert modify["form"] == {
        "items[0][id]": "si_1", "items[0][price_data][currency]": "eur", "items[0][price_data][product]": "prod_1",
        "items[0][price_data][unit_amount]": "2050", "items[0][price_data][recurring][interval]": "month",
        "proration_behavior": "none",
    }
    monthly.refresh_from_db()
    assert (monthly.amount_minor, monthly.status) == (2050, "active")
    entry = AuditLog.objects.get()
    assert (entry.action, entry.amount_minor) == ("monthly_amount", 2050)
    assert entry.details["before"]["amount_minor"] == 1500 and entry.details["after"]["amount_minor"] == 2050


@pytest.mark.parametrize("amount", ["", "abc", "0", "-5", "0,50", "1000001", "15"])
def test_a_bad_or_unchanged_amount_changes_nothing(client, link, monthly, fake_stripe, amount):
    response = _change(client, link, monthly, "amount", amount=amount)
    assert response.status_code == 400
    assert "Rien n'a été modifié" in _text(response)
    assert fake_stripe.requests == [] and AuditLog.objects.count() == 0
    monthly.refresh_from_db()
    assert (monthly.amount_minor, monthly.version) == (1500, 1)


def test_a_second_cancel_says_so_and_calls_stripe_once(client, link, monthly, fake_stripe):
    first = _change(client, link, monthly, "cancel")
    assert first.status_code == 200 and "est arrêté" in _text(first)
    second = _change(client, link, monthly, "cancel")  # the same form, clicked again
    assert second.status_code == 409
    assert "déjà arrêté" in _text(second) and "Rien n'a été modifié" in _text(second)
    assert [(r["method"], r["path"], r["key"]) for r in fake_stripe.requests] == [
        ("DELETE", "/v1/subscriptions/sub_1", f"jauge-sub-{monthly.pk}-v1-cancel")]
    assert AuditLog.objects.filter(action="monthly_cancel").count() == 1
    monthly.refresh_from_db()
    assert (monthly.status, monthly.version) == ("canceled", 2)
    # And nothing else can be done with it.
    assert _change(client, link, monthly, "resume").status_code == 409
    assert client.post(f"{link}mensuel/{monthly.pk}/carte/").status_code == 409
    assert len(fake_stripe.requests) == 1


def test_a_stripe_error_changes_nothing_here(client, link, monthly, fake_stripe):
    fake_stripe.fail_with = "No such subscription: 'sub_1'"
    for action in ("pause", "cancel"):
        response = _change(client, link, monthly, action)
        assert response.status_code == 502
        assert "Stripe n'a pas pu enregistrer ce changement" in _text(response)
    assert len(fake_stripe.requests) == 2
    monthly.refresh_from_db()
    assert (monthly.status, monthly.version) == ("active", 1)
    assert AuditLog.objects.count() == 0


def test_a_stale_form_changes_nothing(client, link, monthly, fake_stripe):
    _change(client, link, monthly, "pause")
    response = client.post(f"{link}mensuel/{monthly.pk}/", {"action": "cancel", "version": "1"})
    assert response.status_code == 409 and "a changé depuis" in _text(response)
    assert len(fake_stripe.requests) == 1
    assert Subscription.objects.get().status == "paused"


def test_another_donors_link_cannot_touch_this_gift(client, campaign, monthly, fake_stripe):
    other = pledges.pledge_create(campaign=campaign, provider="sandbox", amount_minor=500, donor_email="x@example.org")
    factories.confirm(other.pk)
    link = f"/mes-dons/{donor_links.donor_link_token(donor_key=other.donor_key)}/"
    assert "15,00" not in _text(client.get(link))
    assert _change(client, link, monthly, "cancel").status_code == 404
    assert client.post(f"{link}mensuel/{monthly.pk}/carte/").status_code == 404
    assert fake_stripe.requests == []
    assert Subscription.objects.get().status == "active"


def test_an_unknown_action_or_a_get_changes_nothing(client, link, monthly, fake_stripe):
    assert _change(client, link, monthly, "refund").status_code == 404
    assert client.get(f"{link}mensuel/{monthly.pk}/").status_code == 405
    assert fake_stripe.requests == []


def test_the_forms_need_their_csrf_token(link, monthly, fake_stripe):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert _change(strict, link, monthly, "cancel").status_code == 403
    assert fake_stripe.requests == []


def test_htmx_gets_the_gifts_fragment_back(client, link, monthly, fake_stripe):
    response = client.post(f"{link}mensuel/{monthly.pk}/", {"action": "pause", "version": "1"},
                           headers={"HX-Request": "true"})
    body = _text(response)
    assert response.status_code == 200 and "<html" not in body
    assert f'id="monthly-{monthly.pk}"' in body and "En pause" in body and 'role="status"' in body
    assert "HX-Request" in response["Vary"]


def test_the_card_button_opens_stripes_billing_portal(client, link, monthly, fake_stripe, settings):
    response = client.post(f"{link}mensuel/{monthly.pk}/carte/")
    assert response.status_code == 303
    assert response["Location"] == "https://billing.stripe.test/p/session/bps_1"
    (request,) = fake_stripe.requests
    assert (request["method"], request["path"]) == ("POST", "/v1/billing_portal/sessions")
    assert request["form"] == {"customer": "cus_1", "return_url": f"{settings.PUBLIC_URL}{link}",
                               "flow_data[type]": "payment_method_update"}


def test_english_page(client, link):
    body = _text(client.get(f"{link}?lang=en"))
    assert "My gifts" in body and "€15.00 a month" in body


# --- A fresh link by e-mail ---------------------------------------------------------------


def test_asking_for_a_link_answers_the_same_for_known_and_unknown_addresses(client, monthly, settings):
    settings.DONOR_LINK_RATE_LIMIT = "100/h"
    known = client.post("/mes-dons/", {"email": EMAIL})
    unknown = client.post("/mes-dons/", {"email": "nobody@example.org"})
    assert known.status_code == unknown.status_code == 200

    def strip(text):
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", text)

    assert strip(_text(known)) == strip(_text(unknown))
    assert "Si cette adresse a fait un don" in _text(known)


def test_the_link_task_mails_only_an_address_that_gave(monthly):
    send_donor_link.apply(args=(ledger.donor_key_for(email="nobody@example.org"), "fr")).get()
    assert mail.outbox == []
    send_donor_link.apply(args=(ledger.donor_key_for(email=" Marie@Example.org "), "en")).get()
    (message,) = mail.outbox
    assert message.to == [EMAIL] and message.subject == "Your link to your gifts"
    token = re.search(r"/mes-dons/(\S+)/", message.body).group(1)
    assert donor_links.donor_key_from_token(token=token) == ledger.donor_key_for(email=EMAIL)


def test_the_request_enqueues_the_keyed_hash_not_the_address(monthly, django_capture_on_commit_callbacks):
    with mock.patch("campaigns.queue.send") as send:
        mes_dons.donor_link_request(email=" marie@example.org", locale="de")
    send.assert_called_once_with("send_donor_link", ledger.donor_key_for(email=EMAIL), "fr")


def test_asking_for_links_is_rate_limited(client, settings):
    settings.DONOR_LINK_RATE_LIMIT = "2/h"
    statuses = [client.post("/mes-dons/", {"email": f"a{n}@example.org"}).status_code for n in range(3)]
    assert statuses == [200, 200, 429]


def test_a_token_signed_for_another_purpose_is_refused(client, monthly):
    key = monthly.donations.first().donor_key
    foreign = signing.TimestampSigner(salt="jauge.pledge-confirm").sign(key)
    assert client.get(f"/mes-dons/{foreign}/").status_code == 400


@pytest.mark.postgres
def test_two_cancels_at_once_call_stripe_once(transactional_db, client, monthly, fake_stripe):
    """Two tabs (or a double click that beats the page) post cancel at the same moment: the
    subscription's row lock serves them in turn, the second sees the first's result."""
    fake_stripe.delay = 0.3
    key = ledger.donor_key_for(email=EMAIL)
    outcomes: list[str] = []

    def cancel(_tab: int) -> None:
        try:
            subscriptions.subscription_change(donor_key=key, subscription_id=monthly.pk, action="cancel", version=1)
            outcomes.append("done")
        except subscriptions.SubscriptionChangeRefused as refused:
            outcomes.append(refused.reason)

    assert all_at_once(cancel, 2) == []
    assert sorted(outcomes) == ["canceled", "done"]
    assert [r["method"] for r in fake_stripe.requests] == ["DELETE"]
    assert AuditLog.objects.filter(action="monthly_cancel").count() == 1


def test_a_cancelled_gift_says_so_before_judging_an_amount(client, link, monthly, fake_stripe):
    _change(client, link, monthly, "cancel")
    response = client.post(f"{link}mensuel/{monthly.pk}/", {"action": "amount", "version": "2", "amount": "abc"})
    assert response.status_code == 409 and "déjà arrêté" in _text(response)
    assert len(fake_stripe.requests) == 1


def test_htmx_on_a_link_that_expired_meanwhile_reloads_the_page(client, monthly, fake_stripe):
    response = client.post(f"/mes-dons/forged/mensuel/{monthly.pk}/", {"action": "pause", "version": "1"},
                           headers={"HX-Request": "true"})
    assert response.status_code == 400 and response["HX-Refresh"] == "true"
    assert fake_stripe.requests == []



# --- Changes made at Stripe (its dashboard, failed payments) ---------------------------------


def _subscription_event(event_id: str, event_type: str, monthly: Subscription) -> bytes:
    return stripe_event(event_id, event_type, {
        "id": "sub_1", "object": "subscription", "customer": "cus_1", "status": "canceled",
        "metadata": {"campaign": monthly.campaign.slug, "reference": "JG-X"}})


def test_a_subscription_event_makes_a_worker_read_the_gift_back_from_stripe(client, monthly, fake_stripe):
    with mock.patch("campaigns.queue.send") as send:
        assert post_stripe(client, _subscription_event("evt_sub_del", "customer.subscription.deleted",
                                                       monthly)).status_code == 202
        factories.process_all()
    send.assert_any_call("sync_subscription", "stripe", "sub_1")
    event = PaymentEvent.objects.get(event_id="evt_sub_del")
    assert (event.status, event.last_error) == ("processed", "")
    assert total(monthly.campaign) == 3000  # no money moved

    fake_stripe.remote = {"status": "canceled"}
    sync_subscription.apply(args=("stripe", "sub_1")).get()
    monthly.refresh_from_db()
    assert (monthly.status, monthly.version) == ("canceled", 2)
    assert [(r["method"], r["path"]) for r in fake_stripe.requests] == [("GET", "/v1/subscriptions/sub_1")]


def test_a_pause_and_a_new_price_set_at_stripe_show_on_mes_dons(client, link, monthly, fake_stripe):
    fake_stripe.remote = {"pause_collection": {"behavior": "void"}}
    fake_stripe.remote["items"] = {"data": [{"id": "si_1", "price": {"product": "prod_1", "unit_amount": 3000}}]}
    subscriptions.subscription_sync(provider="stripe", subscription_id="sub_1")
    assert "30,00\xa0€ par mois" in _text(client.get(link))
    monthly.refresh_from_db()
    assert (monthly.status, monthly.amount_minor, monthly.version) == ("paused", 3000, 2)
    # A form drawn before that change is out of date.
    assert _change(client, link, Subscription(pk=monthly.pk, version=1), "cancel").status_code == 409


def test_a_sync_that_stripe_does_not_answer_changes_nothing_and_retries(monthly, fake_stripe):
    fake_stripe.fail_with = "Stripe is down"
    with pytest.raises(stripe_provider.SubscriptionUnavailable):
        subscriptions.subscription_sync(provider="stripe", subscription_id="sub_1")
    monthly.refresh_from_db()
    assert (monthly.status, monthly.version) == ("active", 1)


def test_a_cancelled_gift_is_not_read_back_and_an_unknown_one_is_ignored(client, link, monthly, fake_stripe):
    _change(client, link, monthly, "cancel")
    fake_stripe.requests.clear()
    assert subscriptions.subscription_sync(provider="stripe", subscription_id="sub_1").status == "canceled"
    assert subscriptions.subscription_sync(provider="stripe", subscription_id="sub_unknown") is None
    assert fake_stripe.requests == []


def test_after_a_stripe_error_another_amount_goes_with_its_own_key(client, link, monthly, fake_stripe):
    fake_stripe.fail_with, fake_stripe.fail_methods = "Your request could not be processed", ("POST",)
    assert _change(client, link, monthly, "amount", amount="20").status_code == 502
    fake_stripe.fail_with = ""
    assert _change(client, link, monthly, "amount", amount="25").status_code == 200
    keys = [r["key"] for r in fake_stripe.requests if r["method"] == "POST"]
    assert keys == [f"jauge-sub-{monthly.pk}-v1-amount-2000", f"jauge-sub-{monthly.pk}-v1-amount-2500"]
    monthly.refresh_from_db()
    assert (monthly.amount_minor, monthly.version) == (2500, 2)


def test_the_donors_tax_receipts_are_listed_with_their_download_links(client, campaign, settings):
    from campaigns.services import donor_links, ledger, tax_receipts
    from tests.tax_receipt_helpers import gift, org_enable

    org_enable()
    donation = gift(campaign, 5000, email="louise@example.org")
    receipt = tax_receipts.tax_receipt_issue_for_gift(donation_id=donation.pk)
    url = donor_links.donor_link_url(donor_key=donation.donor_key)
    page = client.get(url.removeprefix(settings.PUBLIC_URL))
    listed = tax_receipts.tax_receipt_url(receipt=receipt).removeprefix(settings.PUBLIC_URL)
    assert receipt.number in _text(page)
    assert listed in page.content.decode()
    assert client.get(listed).content.startswith(b"%PDF")

    # A full refund cancels the receipt: it is no longer offered.
    with ledger.donation_locked(donation_id=donation.pk) as (total, locked):
        ledger.donation_refund(total=total, donation=locked, refund_id="re_all")
    assert receipt.number not in _text(client.get(url.removeprefix(settings.PUBLIC_URL)))


def test_after_an_erasure_the_old_link_no_longer_lists_the_donors_tax_receipts(client, campaign, settings):
    # The receipt is kept (a legal record) under the key it was issued with; the link of that key,
    # still within its days, must not hand out the PDF with the erased donor's name and address.
    from campaigns.services import gdpr, tax_receipts
    from tests.staff_world import staff_world
    from tests.tax_receipt_helpers import gift, org_enable

    org_enable()
    donation = gift(campaign, 5000, email="louise@example.org", name="Louise Michel")
    receipt = tax_receipts.tax_receipt_issue_for_gift(donation_id=donation.pk)
    url = donor_links.donor_link_url(donor_key=donation.donor_key).removeprefix(settings.PUBLIC_URL)
    assert receipt.number in _text(client.get(url))

    gdpr.donor_erase(actor=staff_world()["finance"], donation_id=donation.pk, reason="demande du donateur")
    page = client.get(url)
    assert page.status_code == 200
    assert receipt.number not in _text(page) and "/recu-fiscal/" not in page.content.decode()
    assert "Aucun don" in _text(page)


def test_after_an_erasure_no_audit_entry_ties_the_donors_changes_to_their_email(client, link, monthly, fake_stripe):
    # The erasure gives the donor's gifts a new opaque key so that their keyed e-mail hash can no
    # longer be matched (ledger.donor_key_for(email) is all it takes). The audit log is append-only
    # and never rewritten: the changes a donor made from Mes dons must not carry that hash.
    from campaigns.services import gdpr
    from tests.staff_world import staff_world

    assert _change(client, link, monthly, "pause").status_code == 200
    donation = Donation.objects.filter(subscription=monthly).first()
    gdpr.donor_erase(actor=staff_world()["finance"], donation_id=donation.pk, reason="demande du donateur")
    old_key = ledger.donor_key_for(email=EMAIL)
    assert not Donation.objects.filter(donor_key=old_key).exists()
    change = AuditLog.objects.get(action="monthly_pause")
    assert old_key not in change.actor_username and old_key not in str(change.details)
    assert change.details["subscription"] == "sub_1"  # still says which monthly gift, through the signed link
