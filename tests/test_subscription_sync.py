"""A monthly gift changed at Stripe: the sync request is recorded with the webhook's processing, cleared
by the sync that read Stripe's answer, and sent again by the sweeper when its task was lost."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connections
from django.utils import timezone

from campaigns import tasks
from campaigns.models import PaymentEvent, Subscription
from campaigns.providers import stripe as stripe_provider
from campaigns.services import subscriptions
from tests import factories
from tests import test_mes_dons as mes_dons_tests
from tests.test_stripe import post_stripe, stripe_event

pytestmark = pytest.mark.django_db

# Marie's 15 € a month through Stripe, two instalments paid (the *Mes dons* tests' world).
fake_stripe = mes_dons_tests.fake_stripe
monthly = mes_dons_tests.monthly
link = mes_dons_tests.link

SYNC = mock.call("sync_subscription", "stripe", "sub_1")


def _changed_at_stripe(client, monthly: Subscription, event_id: str, *, sub_id: str = "sub_1") -> mock.MagicMock:
    """Stripe says the gift changed; the event is applied, and the sync task it sends is lost
    (recorded here, never run: the broker was down)."""
    body = stripe_event(event_id, "customer.subscription.updated", {
        "id": sub_id, "object": "subscription", "customer": "cus_1", "status": "active",
        "metadata": {"campaign": monthly.campaign.slug, "reference": "JG-X"}})
    with mock.patch("campaigns.queue.send") as send:
        assert post_stripe(client, body).status_code == 202
        factories.process_all()
    assert PaymentEvent.objects.get(event_id=event_id).status == "processed"
    return send


def _due(monthly: Subscription):
    monthly.refresh_from_db()
    return monthly.sync_requested_at


def _age(monthly: Subscription, **fields: timedelta) -> None:
    Subscription.objects.filter(pk=monthly.pk).update(**{name: timezone.now() - ago for name, ago in fields.items()})


def test_the_webhook_marks_the_gift_due_and_the_sync_records_stripes_state_and_clears_it(client, monthly,
                                                                                      fake_stripe):
    before = timezone.now()
    send = _changed_at_stripe(client, monthly, "evt_upd_1")
    assert SYNC in send.call_args_list
    assert _due(monthly) >= before

    fake_stripe.remote = {"pause_collection": {"behavior": "void"}}
    tasks.sync_subscription.apply(args=("stripe", "sub_1")).get()
    monthly.refresh_from_db()
    assert (monthly.status, monthly.version, monthly.sync_requested_at) == ("paused", 2, None)


def test_a_sync_run_twice_changes_the_gift_once(client, monthly, fake_stripe):
    _changed_at_stripe(client, monthly, "evt_upd_1")
    fake_stripe.remote = {"status": "canceled"}
    for _ in range(2):  # a redelivered task, or the sweeper's copy after the first one ran
        subscriptions.subscription_sync(provider="stripe", subscription_id="sub_1")
    monthly.refresh_from_db()
    assert (monthly.status, monthly.version, monthly.sync_requested_at) == ("canceled", 2, None)


def test_a_lost_sync_is_sent_again_by_the_sweeper_after_the_delay_and_not_before(client, monthly, fake_stripe,
                                                                                settings):
    settings.SWEEP_AFTER_SECONDS = 60
    _changed_at_stripe(client, monthly, "evt_upd_1")  # its sync task never reaches a worker
    with mock.patch("campaigns.queue.send") as send:
        tasks.sweep_unprocessed()  # what beat runs every 30 s: too early, the task may be queued still
        assert SYNC not in send.call_args_list

        _age(monthly, sync_requested_at=timedelta(seconds=61))
        tasks.sweep_unprocessed()
        assert send.call_args_list.count(SYNC) == 1
        tasks.sweep_unprocessed()  # the copy just sent may still wait in the queue: not sent again yet
        assert send.call_args_list.count(SYNC) == 1

        _age(monthly, sync_swept_at=timedelta(seconds=61))
        tasks.sweep_unprocessed()  # still not done a while after the sweeper's copy: once more
        assert send.call_args_list.count(SYNC) == 2

    fake_stripe.remote = {"status": "canceled"}
    tasks.sync_subscription.apply(args=("stripe", "sub_1")).get()  # the copy a worker runs
    monthly.refresh_from_db()
    assert (monthly.status, monthly.sync_requested_at, monthly.sync_swept_at) == ("canceled", None, None)
    assert subscriptions.subscription_syncs_sweep(older_than_seconds=0) == []


def test_a_stripe_error_keeps_the_request_for_the_sweeper_and_is_logged(client, monthly, fake_stripe, caplog):
    _changed_at_stripe(client, monthly, "evt_upd_1")
    requested = _due(monthly)
    fake_stripe.fail_with = "Stripe is down"
    with caplog.at_level(logging.WARNING, logger="campaigns.services.subscriptions"), \
            pytest.raises(stripe_provider.SubscriptionUnavailable):
        subscriptions.subscription_sync(provider="stripe", subscription_id="sub_1")
    assert "sync left due" in caplog.text and "Stripe is down" in caplog.text
    assert _due(monthly) == requested
    assert (monthly.status, monthly.version) == ("active", 1)

    _age(monthly, sync_requested_at=timedelta(minutes=5))
    with mock.patch("campaigns.queue.send") as send:
        assert subscriptions.subscription_syncs_sweep(older_than_seconds=60) == [monthly.pk]
    assert send.call_args_list == [SYNC]


def test_a_gift_jauge_does_not_know_or_a_cancelled_one_gets_no_request(client, link, monthly, fake_stripe):
    send = _changed_at_stripe(client, monthly, "evt_upd_other", sub_id="sub_other")
    assert mock.call("sync_subscription", "stripe", "sub_other") in send.call_args_list  # a no-op for the worker
    assert not Subscription.objects.filter(external_id="sub_other").exists()
    assert _due(monthly) is None

    mes_dons_tests._change(client, link, monthly, "cancel")
    _changed_at_stripe(client, monthly, "evt_upd_2")
    assert _due(monthly) is None
    assert subscriptions.subscription_syncs_sweep(older_than_seconds=0) == []


@pytest.mark.postgres
def test_a_change_arriving_during_a_sync_is_not_lost(transactional_db, client, monthly, fake_stripe):
    """Stripe's answer was read before its second change: the second request survives the first sync."""
    _changed_at_stripe(client, monthly, "evt_upd_1")
    first = _due(monthly)
    fake_stripe.delay = 0.5  # the sync holds the gift's row this long, inside Stripe's call
    synced: list[Subscription | None] = []

    def sync() -> None:
        try:
            synced.append(subscriptions.subscription_sync(provider="stripe", subscription_id="sub_1"))
        finally:
            connections.close_all()

    thread = threading.Thread(target=sync)
    thread.start()
    while not fake_stripe.requests:  # the sync is inside Stripe's call, holding the row
        threading.Event().wait(0.01)
    send = _changed_at_stripe(client, monthly, "evt_upd_2")  # waits for the sync's commit, then requests
    thread.join()
    assert synced and synced[0].sync_requested_at is None  # the first sync cleared what it saw
    second = _due(monthly)
    assert second is not None and second > first
    assert SYNC in send.call_args_list

    fake_stripe.delay = 0.0
    subscriptions.subscription_sync(provider="stripe", subscription_id="sub_1")  # the second request's sync
    assert _due(monthly) is None
