"""Stripe: Checkout Session creation at the SDK's HTTP boundary, and signed webhooks through
/hooks/stripe/ (the same intake path as every provider). No network anywhere."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs

import pytest
import stripe

from campaigns.models import CampaignTotal, Donation, PaymentEvent
from campaigns.services import pledges
from campaigns.services.reconcile import campaign_reconcile
from tests import factories

pytestmark = pytest.mark.django_db

WEBHOOK_SECRET = "whsec_test_secret"


@pytest.fixture(autouse=True)
def _stripe_settings(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_jauge"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.PAYMENT_PROVIDERS = ["stripe", "sandbox"]
    settings.DONATE_RATE_LIMIT = "1000/m"


def stripe_event(event_id: str, event_type: str, obj: dict, previous: dict | None = None) -> bytes:
    data: dict = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    return json.dumps({"id": event_id, "object": "event", "type": event_type, "created": int(time.time()),
                       "api_version": "2026-10-28.endive", "data": data}).encode()


def post_stripe(client, body: bytes, secret: str = WEBHOOK_SECRET, header: str | None = None):
    # Signed exactly as Stripe signs, with the SDK's own helper.
    if header is None:
        header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret)
    headers = {"Stripe-Signature": header} if header else {}
    return client.post("/hooks/stripe/", body, content_type="application/json", headers=headers)




def session_completed(pledge: Donation, *, event_id="evt_cs_1", amount=None, currency="eur", pi="pi_1") -> bytes:
    return stripe_event(event_id, "checkout.session.completed", {
        "id": "cs_test_1", "object": "checkout.session", "mode": "payment", "payment_status": "paid",
        "amount_total": pledge.amount_minor if amount is None else amount, "currency": currency,
        "payment_intent": pi, "client_reference_id": pledge.reference,
        "customer_details": {"email": "marie@example.org", "name": "Marie Curie"},
        "metadata": {"pledge_id": str(pledge.pk), "reference": pledge.reference, "campaign": pledge.campaign.slug},
    })


def total(campaign) -> int:
    return CampaignTotal.objects.get(campaign=campaign).total_minor


@pytest.fixture
def pledge(campaign) -> Donation:
    return pledges.pledge_create(campaign=campaign, provider="stripe", amount_minor=2500,
                                 donor_email="marie@example.org")


def test_completed_checkout_confirms_the_pledge_once_even_when_delivered_twice(client, campaign, pledge):
    body = session_completed(pledge)
    assert post_stripe(client, body).status_code == 202
    assert post_stripe(client, body).status_code == 200
    factories.process_all()
    factories.process_all()
    pledge.refresh_from_db()
    assert pledge.status == Donation.Status.CONFIRMED
    assert total(campaign) == 2500
    assert PaymentEvent.objects.get().status == PaymentEvent.Status.PROCESSED


@pytest.mark.parametrize("header", ["", "t=1,v1=deadbeef", None])
def test_a_bad_signature_is_refused_and_moves_nothing(client, campaign, pledge, header):
    body = session_completed(pledge)
    if header is None:  # signed with another secret
        response = post_stripe(client, body, secret="whsec_someone_else")
    else:
        response = post_stripe(client, body, header=header)
    assert response.status_code == 401
    assert "signature" in response.json()["error"]
    assert not PaymentEvent.objects.exists()
    assert total(campaign) == 0


def test_refunds_count_once_by_their_refund_id_and_disputes_lower_the_total(client, campaign, pledge):
    other = pledges.pledge_create(campaign=campaign, provider="stripe", amount_minor=4000)
    post_stripe(client, session_completed(pledge, pi="pi_1"))
    post_stripe(client, session_completed(other, event_id="evt_cs_2", pi="pi_2"))
    factories.process_all()
    assert total(campaign) == 6500

    charge = {"id": "ch_1", "object": "charge", "payment_intent": "pi_1", "currency": "eur", "amount": 2500,
              "metadata": {"reference": pledge.reference, "campaign": campaign.slug}}
    re_1 = {"id": "re_1", "object": "refund", "amount": 1000, "currency": "eur", "status": "succeeded"}
    re_2 = {"id": "re_2", "object": "refund", "amount": 500, "currency": "eur", "status": "succeeded"}
    first = stripe_event("evt_rf_1", "charge.refunded", {**charge, "amount_refunded": 1000,
                                                         "refunds": {"object": "list", "data": [re_1]}})
    second = stripe_event("evt_rf_2", "charge.refunded", {**charge, "amount_refunded": 1500,
                                                          "refunds": {"object": "list", "data": [re_2, re_1]}})
    # Delivered out of order and the first one twice: each listed refund counts once, by its id.
    for body in (second, first, first):
        post_stripe(client, body)
    factories.process_all()
    assert total(campaign) == 6500 - 1500

    # A dispute names only the PaymentIntent: it finds the pledge through the checkout event.
    dispute = stripe_event("evt_dp_1", "charge.dispute.created", {
        "id": "dp_1", "object": "dispute", "charge": "ch_2", "payment_intent": "pi_2", "amount": 4000,
        "currency": "eur", "metadata": {}, "status": "needs_response"})
    post_stripe(client, dispute)
    factories.process_all()
    assert total(campaign) == 6500 - 1500 - 4000
    other.refresh_from_db()
    assert other.status == Donation.Status.REFUNDED


@pytest.mark.parametrize(("amount", "currency", "error"), [(3000, "eur", "amount mismatch"),
                                                            (2500, "usd", "currency mismatch")])
def test_an_amount_or_currency_that_disagrees_is_flagged_not_applied(client, campaign, pledge, amount, currency,
                                                                     error):
    post_stripe(client, session_completed(pledge, amount=amount, currency=currency))
    factories.process_all()
    event = PaymentEvent.objects.get()
    assert event.status == PaymentEvent.Status.FAILED and error in event.last_error
    pledge.refresh_from_db()
    assert pledge.status == Donation.Status.PENDING
    assert total(campaign) == 0


def test_an_expired_session_fails_the_pledge_and_an_unpaid_one_waits(client, campaign, pledge):
    unpaid = json.loads(session_completed(pledge, event_id="evt_cs_unpaid"))
    unpaid["data"]["object"]["payment_status"] = "unpaid"  # SEPA debit: the money comes later
    post_stripe(client, json.dumps(unpaid).encode())
    factories.process_all()
    pledge.refresh_from_db()
    assert pledge.status == Donation.Status.PENDING
    expired = stripe_event("evt_cs_expired", "checkout.session.expired", {
        "id": "cs_test_1", "mode": "payment", "amount_total": 2500, "currency": "eur", "payment_status": "unpaid",
        "metadata": {"reference": pledge.reference, "campaign": campaign.slug}})
    post_stripe(client, expired)
    factories.process_all()
    pledge.refresh_from_db()
    assert pledge.status == Donation.Status.FAILED
    assert total(campaign) == 0


def invoice_paid(event_id: str, invoice_id: str, pledge: Donation, reason: str) -> bytes:
    metadata = {"pledge_id": str(pledge.pk), "reference": pledge.reference, "campaign": pledge.campaign.slug}
    return stripe_event(event_id, "invoice.paid", {
        "id": invoice_id, "object": "invoice", "amount_paid": pledge.amount_minor, "currency": "eur",
        "billing_reason": reason, "customer_email": "marie@example.org", "customer_name": "Marie Curie",
        "parent": {"type": "subscription_details",
                   "subscription_details": {"subscription": "sub_1", "metadata": metadata}},
    })


def test_each_paid_monthly_invoice_is_its_own_ledger_entry(client, campaign):
    pledge = pledges.pledge_create(campaign=campaign, provider="stripe", amount_minor=1500,
                                   frequency=Donation.Frequency.MONTHLY)
    subscription_session = stripe_event("evt_cs_sub", "checkout.session.completed", {
        "id": "cs_sub", "mode": "subscription", "payment_status": "paid", "amount_total": 1500, "currency": "eur",
        "metadata": {"reference": pledge.reference, "campaign": campaign.slug}})
    post_stripe(client, subscription_session)
    post_stripe(client, invoice_paid("evt_in_1", "in_1", pledge, "subscription_create"))
    post_stripe(client, invoice_paid("evt_in_2", "in_2", pledge, "subscription_cycle"))
    post_stripe(client, invoice_paid("evt_in_2", "in_2", pledge, "subscription_cycle"))  # a retry
    factories.process_all()
    assert total(campaign) == 3000
    pledge.refresh_from_db()
    assert pledge.status == Donation.Status.CONFIRMED
    monthly = Donation.objects.filter(frequency=Donation.Frequency.MONTHLY, status=Donation.Status.CONFIRMED)
    assert sorted(monthly.values_list("external_id", flat=True)) == sorted([pledge.reference, "in_2"])


class FakeStripeHTTP(stripe.HTTPClient):
    """Stands where the SDK would open a connection: records the request, answers like the API."""

    name = "fake"

    def __init__(self, status: int = 200, body: dict | None = None):
        super().__init__()
        self.status, self.body, self.requests = status, body, []

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        self.requests.append({"method": method, "url": url, "headers": dict(headers),
                              "data": parse_qs(post_data or "")})
        body = self.body or {"id": "cs_test_42", "object": "checkout.session",
                             "url": "https://checkout.stripe.com/c/pay/cs_test_42"}
        return json.dumps(body), self.status, {"Request-Id": "req_1"}

    def close(self):
        pass


def test_a_one_off_gift_opens_a_checkout_session_in_minor_units(client, campaign, monkeypatch):
    fake = FakeStripeHTTP()
    monkeypatch.setattr(stripe, "default_http_client", fake)
    response = client.post("/c/test-campaign/donate/", {
        "amount": "25,50", "frequency": "once", "name": "Marie", "email": "marie@example.org", "provider": "stripe"})
    assert response.status_code == 302
    assert response["Location"] == "https://checkout.stripe.com/c/pay/cs_test_42"
    pledge = Donation.objects.get()
    [sent] = fake.requests
    assert sent["method"] == "post" and sent["url"].endswith("/v1/checkout/sessions")
    assert sent["headers"]["Idempotency-Key"] == f"jauge-pledge-{pledge.reference}"
    assert sent["headers"]["Authorization"] == "Bearer sk_test_jauge"
    data = {key: values[0] for key, values in sent["data"].items()}
    assert data["mode"] == "payment"
    assert data["line_items[0][price_data][unit_amount]"] == "2550"
    assert data["line_items[0][price_data][currency]"] == "eur"
    assert data["metadata[reference]"] == pledge.reference
    assert data["metadata[pledge_id]"] == str(pledge.pk)
    assert data["metadata[campaign]"] == "test-campaign"
    assert data["payment_intent_data[metadata][reference]"] == pledge.reference
    assert data["customer_email"] == "marie@example.org"
    assert data["success_url"].endswith(f"/c/test-campaign/merci/{pledge.reference}/")


def test_a_monthly_gift_opens_a_subscription_session(client, campaign, monkeypatch):
    fake = FakeStripeHTTP()
    monkeypatch.setattr(stripe, "default_http_client", fake)
    client.post("/c/test-campaign/donate/", {
        "amount": "15", "frequency": "monthly", "name": "Marie", "email": "marie@example.org", "provider": "stripe"})
    data = {key: values[0] for key, values in fake.requests[0]["data"].items()}
    assert data["mode"] == "subscription"
    assert data["line_items[0][price_data][recurring][interval]"] == "month"
    assert data["subscription_data[metadata][reference]"] == Donation.objects.get().reference


def test_stripe_refusing_the_session_shows_a_clear_error_and_keeps_the_form(client, campaign, monkeypatch):
    fake = FakeStripeHTTP(status=400, body={"error": {"type": "invalid_request_error", "message": "No such thing"}})
    monkeypatch.setattr(stripe, "default_http_client", fake)
    response = client.post("/c/test-campaign/donate/", {
        "amount": "25", "frequency": "once", "name": "Marie", "email": "marie@example.org", "provider": "stripe"})
    assert response.status_code == 503
    assert "Ce moyen de paiement ne répond pas pour le moment" in response.content.decode()
    assert 'value="Marie"' in response.content.decode()


def test_a_dispute_naming_only_its_payment_is_stored_without_a_query_and_found_by_the_worker(
    client, campaign, pledge, django_assert_num_queries
):
    from campaigns.providers import WEBHOOK_SOURCES

    post_stripe(client, session_completed(pledge, pi="pi_9"))
    factories.process_all()
    dispute = stripe_event("evt_dp_9", "charge.dispute.created", {
        "id": "dp_9", "object": "dispute", "charge": "ch_9", "payment_intent": "pi_9", "amount": 2500,
        "currency": "eur", "metadata": {}, "status": "needs_response"})
    with django_assert_num_queries(0):
        parsed = WEBHOOK_SOURCES["stripe"].parse(dispute)  # what the webhook view runs before storing
    assert (parsed.campaign_slug, parsed.donation_external_id) == ("", "pi_9")
    post_stripe(client, dispute)
    factories.process_all()
    assert total(campaign) == 0
    assert PaymentEvent.objects.get(event_id="evt_dp_9").donation_id == pledge.pk


@pytest.mark.usefixtures("_stripe_settings")
def test_a_stripe_refund_delivered_before_its_checkout_applies_once_the_checkout_arrives(client, campaign):
    pledge = pledges.pledge_create(campaign=campaign, provider="stripe", amount_minor=2500)
    refund = {"id": "re_1", "object": "refund", "payment_intent": "pi_1", "charge": "ch_1", "currency": "eur",
              "amount": 1000, "status": "succeeded",
              "metadata": {"reference": pledge.reference, "campaign": campaign.slug}}
    post_stripe(client, stripe_event("evt_rf_1", "refund.created", refund))
    factories.process_all()
    assert PaymentEvent.objects.get(event_id="evt_rf_1").status == PaymentEvent.Status.DEFERRED

    post_stripe(client, session_completed(pledge, pi="pi_1"))
    factories.process_all()

    assert PaymentEvent.objects.get(event_id="evt_rf_1").status == PaymentEvent.Status.PROCESSED
    assert factories.counter(campaign).total_minor == 1500
    assert campaign_reconcile(campaign=campaign) == []


def _dispute(event_id: str, event_type: str, pledge: Donation, *, status: str = "needs_response",
             amount: int = 2500) -> bytes:
    return stripe_event(event_id, event_type, {
        "id": "dp_1", "object": "dispute", "charge": "ch_1", "payment_intent": "pi_1", "amount": amount,
        "currency": "eur", "metadata": {}, "status": status})


@pytest.mark.usefixtures("_stripe_settings")
def test_a_won_dispute_gives_the_money_back_and_its_withdrawal_counts_once(client, campaign):
    pledge = pledges.pledge_create(campaign=campaign, provider="stripe", amount_minor=2500)
    post_stripe(client, session_completed(pledge, pi="pi_1"))
    factories.process_all()
    # Stripe announces the dispute and the withdrawal of its funds: one movement of money.
    post_stripe(client, _dispute("evt_dp_created", "charge.dispute.created", pledge))
    post_stripe(client, _dispute("evt_dp_withdrawn", "charge.dispute.funds_withdrawn", pledge))
    factories.process_all()
    assert factories.counter(campaign).total_minor == 0

    post_stripe(client, _dispute("evt_dp_won", "charge.dispute.funds_reinstated", pledge, status="won"))
    post_stripe(client, _dispute("evt_dp_won_again", "charge.dispute.funds_reinstated", pledge, status="won"))
    factories.process_all()

    pledge.refresh_from_db()
    assert pledge.status == Donation.Status.CONFIRMED
    counter = factories.counter(campaign)
    assert (counter.total_minor, counter.donation_count, counter.donor_count) == (2500, 1, 1)
    assert campaign_reconcile(campaign=campaign) == []


@pytest.mark.usefixtures("_stripe_settings")
def test_a_dispute_inquiry_moves_no_money_until_its_funds_are_withdrawn(client, campaign):
    pledge = pledges.pledge_create(campaign=campaign, provider="stripe", amount_minor=2500)
    post_stripe(client, session_completed(pledge, pi="pi_1"))
    post_stripe(client, _dispute("evt_inq", "charge.dispute.created", pledge, status="warning_needs_response"))
    factories.process_all()
    assert factories.counter(campaign).total_minor == 2500

    post_stripe(client, _dispute("evt_esc", "charge.dispute.funds_withdrawn", pledge))
    factories.process_all()
    assert factories.counter(campaign).total_minor == 0
