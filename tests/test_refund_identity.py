"""Every refund has an identity and counts once: Stripe's Refund id, a generic event's refund id
(or its event id), whatever announces it (an editor through Stripe's API, webhooks, re-deliveries)
and whatever order it arrives in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import AuditLog, Campaign, CampaignTotal, Donation, LedgerEntry, PaymentEvent
from campaigns.services import intake, ledger, pledges, refunds
from campaigns.services.campaigns import campaign_upsert
from campaigns.services.reconcile import campaign_reconcile
from tests.factories import post_webhook, webhook_body
from tests.stripe_fake import FakeStripeHandler, stripe_api_served_by
from tests.test_stripe import WEBHOOK_SECRET, post_stripe, session_completed, stripe_event

pytestmark = pytest.mark.django_db


class FakeStripe(FakeStripeHandler):
    """Stripe's refunds endpoint, over real HTTP on 127.0.0.1: one refund per idempotency key."""

    refunds_by_key: dict[str, dict] = {}
    requests: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        form = self._form()
        key = self.headers.get("Idempotency-Key", "")
        FakeStripe.requests.append({"path": self.path, "form": form, "key": key,
                                    "auth": self.headers.get("Authorization", "")})
        if self.path != "/v1/refunds":
            return self._answer(404, {"error": {"type": "invalid_request_error", "message": "no such path"}})
        refund = FakeStripe.refunds_by_key.get(key)
        if refund is None:
            refund = {
                "id": f"re_fake_{len(FakeStripe.refunds_by_key) + 1}", "object": "refund",
                "amount": int(form["amount"]), "currency": "eur", "payment_intent": form["payment_intent"],
                "status": "succeeded", "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")},
            }
            FakeStripe.refunds_by_key[key] = refund
        self._answer(200, refund)


@pytest.fixture
def fake_stripe(settings) -> Iterator[type[FakeStripe]]:
    settings.STRIPE_SECRET_KEY = "sk_test_jauge"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.PAYMENT_PROVIDERS = ["stripe", "sandbox"]
    FakeStripe.refunds_by_key, FakeStripe.requests = {}, []
    with stripe_api_served_by(FakeStripe):
        yield FakeStripe


def _process_all() -> None:
    for event_id in PaymentEvent.objects.filter(status="received").order_by("pk").values_list("pk", flat=True):
        intake.payment_event_process(event_id=event_id)


def _total(campaign: Campaign) -> int:
    return CampaignTotal.objects.get(campaign=campaign).total_minor


def _refund_object(refund_id: str, amount: int, pledge: Donation, *, status: str = "succeeded") -> dict:
    return {"id": refund_id, "object": "refund", "amount": amount, "currency": "eur", "payment_intent": "pi_1",
            "charge": "ch_1", "status": status, "metadata": {}}


@pytest.fixture
def stripe_gift(client, campaign, fake_stripe) -> Donation:
    pledge = pledges.pledge_create(campaign=campaign, provider="stripe", amount_minor=2500,
                                   donor_email="marie@example.org")
    post_stripe(client, session_completed(pledge, pi="pi_1"))
    _process_all()
    pledge.refresh_from_db()
    assert pledge.status == Donation.Status.CONFIRMED
    return pledge


@pytest.fixture
def editor(django_user_model):
    return django_user_model.objects.create_superuser("finance", "finance@example.org", "pw")


def test_a_refund_announced_by_the_admin_and_again_by_a_signed_webhook_counts_once(
    client, campaign, stripe_gift, editor, fake_stripe
):
    client.force_login(editor)
    page = client.get(f"/admin/campaigns/donation/{stripe_gift.pk}/refund/")
    request_key = page.context["form"]["request_key"].value()
    assert request_key
    form = {"amount": "10", "reason": "Demande du donateur", "request_key": request_key}
    response = client.post(f"/admin/campaigns/donation/{stripe_gift.pk}/refund/", form)
    assert response.status_code == 302
    # The form submitted twice (a double click): one refund at Stripe, one in the ledger.
    client.post(f"/admin/campaigns/donation/{stripe_gift.pk}/refund/", form)

    assert len(fake_stripe.refunds_by_key) == 1
    sent = fake_stripe.requests[0]
    assert sent["form"]["payment_intent"] == "pi_1" and sent["form"]["amount"] == "1000"
    assert sent["key"] == f"jauge-refund-{stripe_gift.pk}-{request_key}"
    refund = next(iter(fake_stripe.refunds_by_key.values()))
    entry = LedgerEntry.objects.get(donation=stripe_gift, kind=LedgerEntry.Kind.REFUND)
    assert (entry.refund_id, entry.delta_minor) == (refund["id"], -1000)
    assert {a.details["refund_id"] for a in AuditLog.objects.filter(action=AuditLog.Action.REFUND)} == {refund["id"]}
    assert _total(campaign) == 1500

    # Stripe then announces the same refund, twice over (created, updated).
    post_stripe(client, stripe_event("evt_re_created", "refund.created", refund))
    post_stripe(client, stripe_event("evt_re_updated", "charge.refund.updated", refund))
    _process_all()

    assert _total(campaign) == 1500
    assert LedgerEntry.objects.filter(donation=stripe_gift, kind=LedgerEntry.Kind.REFUND).count() == 1
    for event in PaymentEvent.objects.filter(event_id__startswith="evt_re_"):
        assert event.status == PaymentEvent.Status.PROCESSED
        assert event.last_error == "ignored: this refund was already counted"
    assert campaign_reconcile(campaign=campaign) == []


def test_a_webhook_refund_before_the_admin_records_it_still_counts_once(client, campaign, stripe_gift, editor,
                                                                         fake_stripe):
    # Stripe's answer is slow and its webhook wins the race: the editor's record adds nothing.
    fake_stripe.refunds_by_key[f"jauge-refund-{stripe_gift.pk}-k1"] = _refund_object("re_race", 2500, stripe_gift)
    post_stripe(client, stripe_event("evt_re_race", "refund.created", _refund_object("re_race", 2500, stripe_gift)))
    _process_all()
    assert _total(campaign) == 0

    client.force_login(editor)
    response = client.post(f"/admin/campaigns/donation/{stripe_gift.pk}/refund/",
                           {"amount": "", "reason": "Doublon", "request_key": "k1"})
    # Nothing left: refused before Stripe is called.
    assert response.status_code == 200
    assert "nothing left to refund" in response.content.decode()
    assert fake_stripe.requests == []
    assert _total(campaign) == 0


def test_two_different_refunds_of_one_gift_both_count(client, campaign, stripe_gift):
    post_stripe(client, stripe_event("evt_a", "refund.created", _refund_object("re_a", 1000, stripe_gift)))
    post_stripe(client, stripe_event("evt_b", "refund.created", _refund_object("re_b", 500, stripe_gift)))
    _process_all()
    assert _total(campaign) == 1000
    assert set(LedgerEntry.objects.filter(kind="refund").values_list("refund_id", flat=True)) == {"re_a", "re_b"}


def test_the_same_refund_twice_counts_once(client, campaign, stripe_gift):
    refund = _refund_object("re_same", 1000, stripe_gift, status="pending")
    post_stripe(client, stripe_event("evt_1", "refund.created", refund))
    post_stripe(client, stripe_event("evt_2", "refund.updated", {**refund, "status": "succeeded"}))
    # And a charge.refunded from an endpoint that expands the charge's refunds.
    charge = {"id": "ch_1", "object": "charge", "payment_intent": "pi_1", "currency": "eur", "amount": 2500,
              "amount_refunded": 1000, "metadata": {}, "refunds": {"object": "list", "data": [refund]}}
    post_stripe(client, stripe_event("evt_3", "charge.refunded", charge))
    _process_all()
    assert _total(campaign) == 1500
    assert LedgerEntry.objects.filter(kind="refund").count() == 1


def test_a_failed_stripe_refund_moves_nothing(client, campaign, stripe_gift):
    post_stripe(client, stripe_event("evt_f", "refund.created",
                                     _refund_object("re_f", 1000, stripe_gift, status="failed")))
    _process_all()
    assert _total(campaign) == 2500


def test_a_charge_refunded_without_refund_objects_moves_nothing(client, campaign, stripe_gift):
    # API versions since 2022-11-15 do not list refunds on the charge: refund.created counts them.
    charge = {"id": "ch_1", "object": "charge", "payment_intent": "pi_1", "currency": "eur", "amount": 2500,
              "amount_refunded": 1000, "metadata": {}}
    post_stripe(client, stripe_event("evt_c", "charge.refunded", charge))
    _process_all()
    assert _total(campaign) == 2500
    assert PaymentEvent.objects.get(event_id="evt_c").status == PaymentEvent.Status.PROCESSED


def test_rembourser_is_not_offered_on_a_generic_provider_gift(client, campaign, editor):
    post_webhook(client, webhook_body(event_id="evt_g"))
    _process_all()
    gift = Donation.objects.get(source=Donation.Source.GENERIC)
    client.force_login(editor)
    page = client.get(f"/admin/campaigns/donation/{gift.pk}/change/")
    assert f"/admin/campaigns/donation/{gift.pk}/refund/" not in page.content.decode()
    response = client.post(f"/admin/campaigns/donation/{gift.pk}/refund/", {"amount": "", "reason": "x"})
    assert "refund this gift with its payment provider" in response.content.decode()
    assert _total(campaign) == 2500


def test_an_offline_gift_keeps_its_ledger_refund(client, campaign, editor):
    gift, _ = ledger.donation_record(campaign=campaign, source=Donation.Source.MANUAL, external_id="cheque:1",
                                     amount_minor=5000)
    client.force_login(editor)
    response = client.post(f"/admin/campaigns/donation/{gift.pk}/refund/", {"amount": "20", "reason": "Erreur"})
    assert response.status_code == 302
    assert _total(campaign) == 3000


def test_generic_refunds_count_by_refund_id_or_event_id(client, campaign):
    post_webhook(client, webhook_body(event_id="evt_s", donation_id="don_r", amount_minor=5000))
    for event_id, refund_id in (("evt_r1", "rf_1"), ("evt_r2", "rf_1"), ("evt_r3", ""), ("evt_r3", "")):
        extra = {"refund_id": refund_id} if refund_id else {}
        post_webhook(client, webhook_body(event_id=event_id, type="donation.refunded", donation_id="don_r",
                                          amount_minor=1000, **extra))
    _process_all()
    # rf_1 announced twice counts once; evt_r3 (no refund id) is its own refund, re-delivered.
    assert _total(campaign) == 3000


@pytest.fixture
def usd_campaign(db) -> Campaign:
    now = timezone.now()
    usd, _ = campaign_upsert(slug="usd-campaign", defaults={
        "title": "USD", "goal_minor": 100_000, "currency": "USD", "starts_at": now - timedelta(days=1),
        "ends_at": now + timedelta(days=10), "status": Campaign.Status.ACTIVE})
    return usd


def test_a_deferred_usd_refund_of_a_eur_gift_fails_visibly(client, campaign, usd_campaign):
    # Two refunds arrive before their gift: one in its campaign's euros, one naming a dollar campaign.
    post_webhook(client, webhook_body(event_id="evt_usd", type="donation.refunded", donation_id="don_x",
                                      campaign="usd-campaign", currency="USD", amount_minor=1000))
    post_webhook(client, webhook_body(event_id="evt_eur", type="donation.refunded", donation_id="don_x",
                                      amount_minor=500))
    _process_all()
    assert set(PaymentEvent.objects.values_list("status", flat=True)) == {PaymentEvent.Status.DEFERRED}

    post_webhook(client, webhook_body(event_id="evt_ok", donation_id="don_x", amount_minor=2500))
    _process_all()

    usd_refund = PaymentEvent.objects.get(event_id="evt_usd")
    assert usd_refund.status == PaymentEvent.Status.FAILED
    assert "another campaign" in usd_refund.last_error
    assert PaymentEvent.objects.get(event_id="evt_eur").status == PaymentEvent.Status.PROCESSED
    assert _total(campaign) == 2000  # the euro refund only
    assert CampaignTotal.objects.get(campaign=campaign).deferred_events == 0
    assert CampaignTotal.objects.get(campaign=usd_campaign).deferred_events == 0
    assert campaign_reconcile(campaign=campaign) == []


def test_a_deferred_refund_larger_than_the_gift_is_capped_like_a_direct_one(client, campaign):
    post_webhook(client, webhook_body(event_id="evt_big", type="donation.refunded", donation_id="don_y",
                                      amount_minor=9000))
    post_webhook(client, webhook_body(event_id="evt_y", donation_id="don_y", amount_minor=2500))
    _process_all()
    refund = PaymentEvent.objects.get(event_id="evt_big")
    assert refund.status == PaymentEvent.Status.PROCESSED
    assert refund.last_error == "refund capped at 2500: only that much was left on the donation"
    assert _total(campaign) == 0


def test_a_refund_whose_success_never_comes_fails_after_the_configured_time(client, campaign, settings):
    settings.DEFERRED_REFUND_MAX_HOURS = 1
    post_webhook(client, webhook_body(event_id="evt_lost", type="donation.refunded", donation_id="don_lost"))
    _process_all()
    event = PaymentEvent.objects.get()
    assert event.status == PaymentEvent.Status.DEFERRED
    assert refunds.deferred_refunds_expire() == []  # not yet

    assert refunds.deferred_refunds_expire(now=timezone.now() + timedelta(hours=2)) == [event.pk]
    event.refresh_from_db()
    assert event.status == PaymentEvent.Status.FAILED
    assert "never came within 1 h" in event.last_error
    assert CampaignTotal.objects.get(campaign=campaign).deferred_events == 0


def test_deferred_refunds_are_listed_for_editors_with_their_age(client, campaign, editor):
    post_webhook(client, webhook_body(event_id="evt_wait", type="donation.refunded", donation_id="don_w"))
    _process_all()
    client.force_login(editor)
    page = client.get("/admin/campaigns/paymentevent/?status__exact=deferred")
    html = page.content.decode()
    assert "evt_wait" in html
    assert "waiting for the donation" in html


def test_a_counted_refund_that_fails_gives_its_money_back_once(client, campaign, stripe_gift):
    refund = _refund_object("re_back", 1000, stripe_gift, status="pending")
    post_stripe(client, stripe_event("evt_p", "refund.created", refund))
    _process_all()
    assert _total(campaign) == 1500
    failed = {**refund, "status": "failed"}
    post_stripe(client, stripe_event("evt_f1", "refund.failed", failed))
    post_stripe(client, stripe_event("evt_f2", "charge.refund.updated", failed))
    _process_all()
    assert _total(campaign) == 2500
    stripe_gift.refresh_from_db()
    assert (stripe_gift.status, stripe_gift.refunded_minor) == (Donation.Status.CONFIRMED, 0)
    assert PaymentEvent.objects.get(event_id="evt_f2").last_error.endswith("failure was already applied")
    assert campaign_reconcile(campaign=campaign) == []


def test_a_refund_whose_failure_arrives_first_never_counts(client, campaign, stripe_gift):
    refund = _refund_object("re_late", 1000, stripe_gift, status="pending")
    post_stripe(client, stripe_event("evt_f", "refund.updated", {**refund, "status": "failed"}))
    post_stripe(client, stripe_event("evt_p", "refund.created", refund))
    _process_all()
    assert _total(campaign) == 2500
    assert LedgerEntry.objects.filter(kind="refund").count() == 0
