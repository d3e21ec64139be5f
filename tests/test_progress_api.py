"""progress.json (the contract) and /healthz."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone

from campaigns import progress_cache
from campaigns.models import Campaign
from campaigns.selectors import progress as selectors
from campaigns.services import ledger
from campaigns.services.campaigns import campaign_upsert

pytestmark = pytest.mark.django_db

DEMO = "/api/campaigns/mai-juin-2023/progress.json"
CONTRACT_FIELDS = [
    "slug", "title", "currency", "goal_minor", "total_minor", "pending_minor", "percent",
    "donors", "donations", "status", "starts_at", "ends_at", "version", "updated_at",
    "milestones", "next_milestone_minor", "match", "titles",
]

ARTICLE_ORIGIN = "https://www.journal.example"
CURRENT_JSON = "/api/campaigns/current/progress.json"


@pytest.fixture
def demo(django_capture_on_commit_callbacks) -> Campaign:
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    return Campaign.objects.get(slug="mai-juin-2023")


def test_progress_json_has_the_contract_fields_and_the_demo_values(client, demo, django_assert_max_num_queries):
    response = client.get(DEMO)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    data = response.json()
    assert list(data) == CONTRACT_FIELDS
    assert data | {"starts_at": None, "ends_at": None, "version": None, "updated_at": None} == {
        "slug": "mai-juin-2023", "title": "Campagne de dons Mai-Juin 2023", "currency": "EUR",
        "goal_minor": 2_500_000, "total_minor": 2_007_700, "pending_minor": 0, "percent": 80.31,
        "donors": 412, "donations": 455, "status": "active",
        "starts_at": None, "ends_at": None, "version": None, "updated_at": None,
        "milestones": [], "next_milestone_minor": None, "match": None,
        "titles": {"fr": "Campagne de dons Mai-Juin 2023", "en": "Fundraising campaign May-June 2023"},
    }
    assert isinstance(data["version"], int) and data["version"] >= 455
    for field in ("starts_at", "ends_at", "updated_at"):
        assert datetime.fromisoformat(data[field]).tzinfo is not None
    # The demo is featured and active: it is the `current` campaign.
    current = client.get("/api/campaigns/current/progress.json")
    assert (current.json(), current["ETag"]) == (data, response["ETag"])
    # 455 donations, and the read is still the cached snapshot, or one query on the counter row.
    with django_assert_max_num_queries(0):
        assert client.get(DEMO).status_code == 200
    cache.delete(progress_cache.progress_key("mai-juin-2023"))
    with django_assert_max_num_queries(1):
        assert client.get(DEMO).json()["total_minor"] == 2_007_700


URL = "/api/campaigns/test-campaign/progress.json"


@pytest.fixture
def given(campaign, django_capture_on_commit_callbacks) -> Campaign:
    """The test campaign with a few confirmed donations, its snapshot published."""
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(3):
            ledger.donation_record(campaign=campaign, source="manual", external_id=f"g{i}", amount_minor=1000)
    return campaign


def test_progress_json_is_publicly_cacheable_and_sets_no_cookie(client, given):
    response = client.get(URL)
    assert "public" in response["Cache-Control"] and "max-age=" in response["Cache-Control"]
    assert "stale-while-revalidate=" in response["Cache-Control"]
    assert not response.cookies
    assert "Set-Cookie" not in response.headers


def test_progress_json_answers_304_to_its_etag(client, given):
    etag = client.get(URL)["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    again = client.get(URL, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    assert client.get(URL, headers={"If-None-Match": '"something-else"'}).status_code == 200


def test_a_donation_changes_the_etag_version_and_total(client, given, django_capture_on_commit_callbacks):
    before = client.get(URL)
    with django_capture_on_commit_callbacks(execute=True):
        ledger.donation_record(campaign=given, source="manual", external_id="m1", amount_minor=2300)
    after = client.get(URL, headers={"If-None-Match": before["ETag"]})
    assert after.status_code == 200
    assert after["ETag"] != before["ETag"]
    assert after.json()["version"] > before.json()["version"]
    assert after.json()["total_minor"] == 3000 + 2300


def test_unknown_slug_is_404(client, given):
    assert client.get("/api/campaigns/nope/progress.json").status_code == 404


def test_current_slug_is_the_featured_active_campaign_else_the_one_ending_soonest(
    client, given, django_capture_on_commit_callbacks
):
    current = client.get("/api/campaigns/current/progress.json")
    assert current.status_code == 200
    assert current.json() == client.get(URL).json()
    assert current["ETag"] == client.get(URL)["ETag"]

    now = timezone.now()
    defaults = {"title": "Courte", "goal_minor": 5000, "currency": "EUR", "status": Campaign.Status.ACTIVE,
                "starts_at": now - timedelta(days=1), "ends_at": now + timedelta(days=2)}
    with django_capture_on_commit_callbacks(execute=True):
        campaign_upsert(slug="short", defaults=defaults)
    assert client.get("/api/campaigns/current/progress.json").json()["slug"] == "short"
    with django_capture_on_commit_callbacks(execute=True):
        campaign_upsert(slug=given.slug, defaults={"featured": True})
    assert client.get("/api/campaigns/current/progress.json").json()["slug"] == given.slug


def test_current_slug_with_no_active_campaign_says_none(client, given, django_capture_on_commit_callbacks):
    Campaign.objects.filter(pk=given.pk).update(status=Campaign.Status.CLOSED)
    progress_cache.current_slug_forget()
    response = client.get("/api/campaigns/current/progress.json")
    assert response.status_code == 200
    assert response.json() == {"status": "none"}


def test_healthz_is_200_when_database_and_broker_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() | {"status": "ok"} == {"status": "ok", "database": "ok", "broker": "ok", **{
        k: v for k, v in response.json().items() if k not in ("status", "database", "broker")}}
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_healthz_is_503_when_the_broker_is_unreachable(client, monkeypatch):
    from bench.harness import free_port

    # Celery reads CELERY_BROKER_URL from the environment first, on every new connection.
    monkeypatch.setenv("CELERY_BROKER_URL", f"redis://127.0.0.1:{free_port()}/0")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "error"
    assert response.json()["database"] == "ok"
    assert response.json()["broker"].startswith("error")


def test_a_batch_of_ledger_entries_publishes_progress_once_with_the_final_total(
    client, campaign, django_capture_on_commit_callbacks, monkeypatch
):
    from django.db import transaction

    refreshed = []
    original = progress_cache.snapshot_store
    monkeypatch.setattr(progress_cache, "snapshot_store",
                        lambda snapshot, **kw: refreshed.append(snapshot["total_minor"]) or original(snapshot, **kw))
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        for i in range(5):
            ledger.donation_record(campaign=campaign, source="manual", external_id=f"b{i}", amount_minor=100)
        try:
            with transaction.atomic():  # a rolled-back part of the batch hides nothing
                ledger.donation_record(campaign=campaign, source="manual", external_id="gone", amount_minor=1)
                raise RuntimeError
        except RuntimeError:
            pass
    assert refreshed == [500]
    assert client.get("/api/campaigns/test-campaign/progress.json").json()["total_minor"] == 500
    with django_capture_on_commit_callbacks(execute=True):
        ledger.donation_record(campaign=campaign, source="manual", external_id="next", amount_minor=50)
    assert refreshed == [500, 550]
    assert client.get("/api/campaigns/test-campaign/progress.json").json()["total_minor"] == 550


def test_a_late_writer_never_puts_an_older_snapshot_back(client, campaign, django_capture_on_commit_callbacks):
    """Two workers commit v1 then v2 but write the cache in the other order: v2 stays."""
    with django_capture_on_commit_callbacks(execute=True):
        ledger.donation_record(campaign=campaign, source="manual", external_id="a", amount_minor=100)
    older = selectors.progress_build(campaign_id=campaign.pk)
    with django_capture_on_commit_callbacks(execute=True):
        ledger.donation_record(campaign=campaign, source="manual", external_id="b", amount_minor=200)
    assert progress_cache.snapshot_store(older) is False  # the late write of v1 is refused
    progress_cache.progress_local_forget()
    data = client.get("/api/campaigns/test-campaign/progress.json").json()
    assert (data["total_minor"], data["version"]) == (300, older["version"] + 1)
    # The same version again (a reader rebuilding a snapshot the cache lost) is accepted.
    assert progress_cache.snapshot_store(selectors.progress_build(campaign_id=campaign.pk)) is True


def test_a_campaign_edit_bumps_the_version_so_the_banner_follows_it(
    client, campaign, django_capture_on_commit_callbacks
):
    before = client.get("/api/campaigns/test-campaign/progress.json").json()
    campaign.title = "Campagne renommée"
    with django_capture_on_commit_callbacks(execute=True):
        from campaigns.services.campaigns import campaign_save

        campaign_save(campaign=campaign)
    progress_cache.progress_local_forget()
    after = client.get("/api/campaigns/test-campaign/progress.json").json()
    assert after["title"] == "Campagne renommée" and after["version"] > before["version"]


def test_a_webhook_publishes_its_snapshot_from_the_rows_it_locked(
    client, campaign, django_capture_on_commit_callbacks, django_assert_num_queries
):
    """The hot path reads the campaign under the counter's lock, so after commit the snapshot
    is built from memory: no query, one Redis round trip."""
    from campaigns.models import PaymentEvent
    from campaigns.services import intake
    from tests.factories import post_webhook, webhook_body

    no_receipt = {"name": "Marie", "email": "", "anonymous": False}
    post_webhook(client, webhook_body(event_id="evt_mem", donation_id="don_mem", amount_minor=700, donor=no_receipt))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        intake.payment_event_process(event_id=PaymentEvent.objects.get(event_id="evt_mem").pk)
    with django_assert_num_queries(0):
        for callback in callbacks:
            callback()
    progress_cache.progress_local_forget()
    assert selectors.campaign_progress(slug=campaign.slug)["total_minor"] == 700


def test_a_snapshot_left_behind_by_a_dead_worker_is_republished(client, campaign, django_capture_on_commit_callbacks):
    """A worker killed between its commit and its publish: beat's sweep catches the banner up."""
    from campaigns.services.progress import progress_lagging_refresh

    with django_capture_on_commit_callbacks(execute=True):
        ledger.donation_record(campaign=campaign, source="manual", external_id="a", amount_minor=100)
    with django_capture_on_commit_callbacks(execute=False):  # committed, never published
        ledger.donation_record(campaign=campaign, source="manual", external_id="b", amount_minor=200)
    progress_cache.progress_local_forget()
    assert client.get("/api/campaigns/test-campaign/progress.json").json()["total_minor"] == 100
    assert progress_lagging_refresh() == ["test-campaign"]
    progress_cache.progress_local_forget()
    assert client.get("/api/campaigns/test-campaign/progress.json").json()["total_minor"] == 300
    assert progress_lagging_refresh() == []


def test_a_redis_outage_delays_the_banner_but_never_the_money(campaign, settings, django_capture_on_commit_callbacks):
    from bench.harness import free_port
    from campaigns.models import CampaignTotal

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nobody listens there
    with django_capture_on_commit_callbacks(execute=True):
        ledger.donation_record(campaign=campaign, source="manual", external_id="down", amount_minor=4200)
    assert CampaignTotal.objects.get(campaign=campaign).total_minor == 4200
    # This process still shows the new total (its own copy); other processes catch up when Redis is back.
    assert selectors.campaign_progress(slug=campaign.slug)["total_minor"] == 4200


def test_a_database_restored_behind_the_cache_is_republished(client, campaign, django_capture_on_commit_callbacks):
    """After a restore the counter's version goes back: the compare-and-set would refuse the real
    figures until the cache expired, so beat's sweep forces them in."""
    from campaigns.models import CampaignTotal
    from campaigns.services.progress import progress_lagging_refresh

    with django_capture_on_commit_callbacks(execute=True):
        for i in range(3):
            ledger.donation_record(campaign=campaign, source="manual", external_id=f"r{i}", amount_minor=100)
    CampaignTotal.objects.filter(campaign=campaign).update(total_minor=100, version=1)  # "restored"
    assert progress_lagging_refresh() == ["test-campaign"]
    progress_cache.progress_local_forget()
    data = client.get("/api/campaigns/test-campaign/progress.json").json()
    assert (data["total_minor"], data["version"]) == (100, 1)


def test_a_campaign_created_again_under_the_same_slug_is_not_held_back(campaign, django_capture_on_commit_callbacks):
    from campaigns.models import CampaignTotal

    with django_capture_on_commit_callbacks(execute=True):
        for i in range(3):
            ledger.donation_record(campaign=campaign, source="manual", external_id=f"s{i}", amount_minor=100)
    fresh = selectors.progress_build(campaign_id=campaign.pk) | {"campaign_id": campaign.pk + 1000, "version": 1}
    assert progress_cache.snapshot_store(fresh) is True  # another row, its own versions
    assert CampaignTotal.objects.get(campaign=campaign).version > 1


def test_progress_json_for_current_with_no_live_campaign_has_an_etag_answers_304_and_any_origin_may_read_it(
    client, db
):
    empty = client.get(CURRENT_JSON, headers={"Origin": ARTICLE_ORIGIN})
    assert empty.status_code == 200
    assert empty.json() == {"status": "none"}
    assert empty["Access-Control-Allow-Origin"] == "*"
    assert "public" in empty["Cache-Control"] and "stale-while-revalidate" in empty["Cache-Control"]
    etag = empty["ETag"]
    again = client.get(CURRENT_JSON, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again["ETag"] == etag
    assert "public" in again["Cache-Control"]


def test_a_campaign_starting_changes_the_etag_of_an_empty_current(client, db, django_capture_on_commit_callbacks):
    from campaigns import progress_cache

    etag = client.get(CURRENT_JSON)["ETag"]
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        campaign_upsert(slug="ete", defaults={
            "title": "Été", "goal_minor": 5000, "starts_at": now - timedelta(days=1),
            "ends_at": now + timedelta(days=2), "status": Campaign.Status.ACTIVE})
    progress_cache.current_slug_forget()
    response = client.get(CURRENT_JSON, headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert response.json()["slug"] == "ete"


def test_progress_json_answers_head_like_get(client, live):
    response = client.head("/api/campaigns/printemps/progress.json")
    assert response.status_code == 200
    assert response["ETag"] == client.get("/api/campaigns/printemps/progress.json")["ETag"]
