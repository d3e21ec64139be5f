"""Matching gifts: a sponsor adds N × each gift made in a window, until a cap; one match entry
per gift, reversed by its refund once; in progress.json, on the banner, the SVG, the donation
page and the dashboard; refused when typed wrong; covered by reconcile; never past the cap under
concurrent gifts (real PostgreSQL)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.test import Client
from django.utils import timezone

from campaigns import progress_cache
from campaigns.models import MAX_AMOUNT_MINOR, Campaign, CampaignTotal, Donation, LedgerEntry, PaymentEvent
from campaigns.services import intake, ledger, reconcile
from campaigns.services.campaigns import campaign_save
from tests.factories import post_webhook, webhook_body
from tests.staff_world import staff_world
from tests.threads import gifts_from_threads

pytestmark = pytest.mark.django_db

URL = "/api/campaigns/test-campaign/progress.json"
NNBSP, NBSP = "\u202f", "\u00a0"
CAP_FR = f"5{NNBSP}000,00{NBSP}€"


def _match(campaign: Campaign, callbacks=None, *, ratio: int = 1, cap_minor: int = 500_000,
           sponsor: str = "Fondation Lumière", starts_at=None, ends_at=None) -> Campaign:
    now = timezone.now()
    campaign.match_sponsor, campaign.match_ratio, campaign.match_cap_minor = sponsor, ratio, cap_minor
    campaign.match_starts_at = starts_at or now - timedelta(days=1)
    campaign.match_ends_at = ends_at or now + timedelta(days=10)
    if callbacks is None:
        return campaign_save(campaign=campaign)
    with callbacks(execute=True):
        return campaign_save(campaign=campaign)


def _gift(campaign: Campaign, key: str, amount_minor: int, at=None, callbacks=None) -> Donation:
    def record() -> Donation:
        return ledger.donation_record(campaign=campaign, source=Donation.Source.MANUAL, external_id=key,
                                      amount_minor=amount_minor, at=at or timezone.now())[0]

    if callbacks is None:
        return record()
    with callbacks(execute=True):
        return record()


def _entries(donation: Donation) -> list[int]:
    return list(LedgerEntry.objects.filter(donation=donation, kind=LedgerEntry.Kind.MATCH)
                .order_by("pk").values_list("delta_minor", flat=True))


def _counter(campaign: Campaign) -> CampaignTotal:
    return CampaignTotal.objects.get(campaign=campaign)


def _ledger_sum(campaign: Campaign) -> int:
    return LedgerEntry.objects.filter(campaign=campaign).aggregate(s=Sum("delta_minor"))["s"] or 0


# --- Matching -------------------------------------------------------------------------------


@pytest.mark.parametrize(("ratio", "matched"), [(1, 2_500), (2, 5_000), (3, 7_500)])
def test_a_gift_in_the_window_is_matched_n_to_1_in_its_confirmation(campaign, ratio, matched):
    _match(campaign, ratio=ratio)
    donation = _gift(campaign, "a", 2_500)
    donation.refresh_from_db()
    total = _counter(campaign)
    assert _entries(donation) == [matched]
    assert (donation.balance_minor, donation.matched_minor) == (2_500, matched)
    # Match money counts in the total, not in the donations nor the donors.
    assert (total.total_minor, total.matched_minor) == (2_500 + matched, matched)
    assert (total.donation_count, total.donor_count) == (1, 1)
    assert total.total_minor == _ledger_sum(campaign)
    assert reconcile.totals_reconcile(slug=campaign.slug) == []


def test_a_partial_match_takes_what_is_left_of_the_cap_then_nothing(campaign):
    _match(campaign, cap_minor=10_000)
    first, second, third = (_gift(campaign, key, 6_000) for key in ("a", "b", "c"))
    assert [_entries(first), _entries(second), _entries(third)] == [[6_000], [4_000], []]
    total = _counter(campaign)
    assert (total.matched_minor, total.total_minor) == (10_000, 28_000)


def test_a_gift_outside_the_window_is_not_matched(campaign):
    now = timezone.now()
    _match(campaign, starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1))
    before = _gift(campaign, "before", 1_000, at=now - timedelta(days=2))
    at_end = _gift(campaign, "at-end", 1_000, at=now + timedelta(days=1))  # the end is excluded
    inside = _gift(campaign, "inside", 1_000, at=now)
    assert [_entries(before), _entries(at_end), _entries(inside)] == [[], [], [1_000]]
    assert _counter(campaign).total_minor == 4_000


def test_no_match_without_one(campaign):
    donation = _gift(campaign, "a", 1_000)
    assert _entries(donation) == [] and _counter(campaign).total_minor == 1_000


def test_a_statement_batch_matches_in_its_order_until_the_cap(campaign):
    _match(campaign, cap_minor=5_000)
    pledges = [ledger.donation_create(campaign=campaign, source=Donation.Source.BANK, external_id=f"JG-{i}",
                                      amount_minor=2_000, currency="EUR")[0] for i in range(4)]
    with transaction.atomic():
        total = ledger.total_lock(campaign_id=campaign.pk)
        locked = list(Donation.objects.select_for_update().filter(pk__in=[p.pk for p in pledges]).order_by("pk"))
        ledger.donations_confirm(total=total, confirmations=[(d, timezone.now()) for d in locked])
    assert [_entries(p) for p in pledges] == [[2_000], [2_000], [1_000], []]
    assert [d.matched_minor for d in Donation.objects.order_by("pk")] == [2_000, 2_000, 1_000, 0]
    assert _counter(campaign).total_minor == 8_000 + 5_000 == _ledger_sum(campaign)
    assert reconcile.totals_reconcile(slug=campaign.slug) == []


# --- Refunds ----------------------------------------------------------------------------------


def _webhook(client, event_id: str, **data) -> None:
    assert post_webhook(client, webhook_body(event_id=event_id, **data)).status_code in (200, 202)
    intake.payment_event_process(event_id=PaymentEvent.objects.get(event_id=event_id).pk)


def test_a_refund_reverses_the_match_once_even_delivered_twice(client, campaign):
    _match(campaign, ratio=1, cap_minor=10_000)
    now = timezone.now().isoformat()
    _webhook(client, "evt_ok", donation_id="don_1", amount_minor=6_000, occurred_at=now)
    donation = Donation.objects.get(external_id="don_1")
    assert _entries(donation) == [6_000]
    # A partial refund takes the same share of the sponsor's money; the same refund announced by
    # two events (and a second delivery of one of them) counts once.
    for event_id in ("evt_r1", "evt_r1", "evt_r1b"):
        _webhook(client, event_id, type="donation.refunded", donation_id="don_1", amount_minor=1_500,
                 refund_id="rf_1")
    donation.refresh_from_db()
    assert _entries(donation) == [6_000, -1_500]
    assert (donation.refunded_minor, donation.matched_minor) == (1_500, 4_500)
    assert _counter(campaign).matched_minor == 4_500  # the cap has room again
    # The rest of the gift takes the rest of the match.
    _webhook(client, "evt_r2", type="donation.refunded", donation_id="don_1", amount_minor=4_500, refund_id="rf_2")
    donation.refresh_from_db()
    assert _entries(donation) == [6_000, -1_500, -4_500]
    assert (donation.status, donation.balance_minor, donation.matched_minor) == ("refunded", 0, 0)
    total = _counter(campaign)
    assert (total.total_minor, total.matched_minor, total.donation_count) == (0, 0, 0)
    assert reconcile.totals_reconcile(slug=campaign.slug) == []


def test_a_refund_that_came_first_reverses_the_match_in_the_success_transaction(client, campaign):
    _match(campaign, ratio=2)
    now = timezone.now().isoformat()
    _webhook(client, "evt_r", type="donation.refunded", donation_id="don_1", amount_minor=1_000, refund_id="rf")
    _webhook(client, "evt_ok", donation_id="don_1", amount_minor=1_000, occurred_at=now)
    donation = Donation.objects.get(external_id="don_1")
    assert _entries(donation) == [2_000, -2_000]
    assert _counter(campaign).total_minor == 0 == _ledger_sum(campaign)


def test_uneven_partial_refunds_round_down_and_the_last_takes_the_rest(campaign):
    _match(campaign, ratio=1, cap_minor=700)
    donation = _gift(campaign, "a", 1_000)  # matched 700 (the cap), a ratio of 0.7
    assert _entries(donation) == [700]
    with ledger.donation_locked(donation_id=donation.pk) as (total, locked):
        ledger.donation_refund(total=total, donation=locked, amount_minor=333)
    with ledger.donation_locked(donation_id=donation.pk) as (total, locked):
        ledger.donation_refund(total=total, donation=locked)
    assert _entries(donation) == [700, -233, -467]


def test_the_database_refuses_a_second_match_of_a_gift(campaign):
    _match(campaign)
    donation = _gift(campaign, "a", 1_000)
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(campaign=campaign, donation=donation, delta_minor=5, kind=LedgerEntry.Kind.MATCH)
    assert _entries(donation) == [1_000]


# --- Concurrency ----------------------------------------------------------------------------

THREADS = 6
GIFTS_PER_THREAD = 10


@pytest.mark.postgres
def test_concurrent_gifts_never_pass_the_cap(transactional_db, campaign):
    """Threads confirm gifts at once, each in its own transaction: the counter's lock orders them,
    so the sponsor's money stops exactly at the cap, with one partial match at most."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    _match(campaign, ratio=2, cap_minor=50_500)  # 60 gifts × 2 000 would be 120 000
    errors = gifts_from_threads(campaign, threads=THREADS, per_thread=GIFTS_PER_THREAD, amount_minor=1_000)
    assert not errors, errors
    total = _counter(campaign)
    matches = sorted(LedgerEntry.objects.filter(kind=LedgerEntry.Kind.MATCH).values_list("delta_minor", flat=True))
    assert total.matched_minor == sum(matches) == 50_500
    assert matches == [500] + [2_000] * 25
    assert total.total_minor == 60_000 + 50_500 == _ledger_sum(campaign)
    assert reconcile.totals_reconcile(slug=campaign.slug) == []


# --- Bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"match_ends_at": -2}, "match_ends_at", "L'abondement doit finir après son début."),
    ({"match_ends_at": 0}, "match_ends_at", "L'abondement doit finir après son début."),
    ({"match_cap_minor": 0}, "match_cap_minor", "supérieur à zéro"),
    ({"match_cap_minor": MAX_AMOUNT_MINOR + 1}, "match_cap_minor", "supérieur à zéro et au plus"),
    ({"match_ratio": 0}, "match_ratio", "va de 1 à 10"),
    ({"match_ratio": 11}, "match_ratio", "va de 1 à 10"),
    ({"match_ratio": None}, "match_ratio", "besoin de son ratio"),
])
def test_a_bad_match_is_refused_with_a_clear_error_and_nothing_changes(campaign, changes, field, message):
    version = _counter(campaign).version
    now = timezone.now()
    campaign.match_ratio, campaign.match_cap_minor = 1, 100_000
    campaign.match_starts_at, campaign.match_ends_at = now, now + timedelta(days=1)
    for name, value in changes.items():
        setattr(campaign, name, now + timedelta(days=value) if name == "match_ends_at" else value)
    with pytest.raises(ValidationError) as error:
        campaign_save(campaign=campaign)
    assert message in " ".join(error.value.message_dict[field])
    stored = Campaign.objects.get(pk=campaign.pk)
    assert (stored.match_ratio, stored.match_cap_minor, _counter(campaign).version) == (None, None, version)


def test_the_database_refuses_a_window_that_ends_before_it_starts(campaign):
    now = timezone.now()
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.filter(pk=campaign.pk).update(match_ratio=1, match_cap_minor=100, match_starts_at=now,
                                                       match_ends_at=now - timedelta(hours=1))


def test_the_cap_cannot_go_below_what_gifts_used(campaign):
    _match(campaign, cap_minor=1_000_000)
    _gift(campaign, "a", 600_000)
    campaign.match_cap_minor = 500_000
    with pytest.raises(ValidationError) as error:
        campaign_save(campaign=campaign)
    assert f"6{NNBSP}000,00{NBSP}€" in error.value.message_dict["match_cap_minor"][0]
    assert Campaign.objects.get(pk=campaign.pk).match_cap_minor == 1_000_000


def _admin_form(campaign: Campaign, **match: str) -> dict:
    return {
        "title": campaign.title, "slug": campaign.slug, "status": campaign.status, "locale": "fr",
        "starts_at_0": campaign.starts_at.strftime("%d/%m/%Y"), "starts_at_1": "00:00:00",
        "ends_at_0": campaign.ends_at.strftime("%d/%m/%Y"), "ends_at_1": "23:59:59",
        "currency": "EUR", "goal_minor": "10 000", "preset_amounts_minor": "", "min_amount_minor": "1",
        "max_amount_minor": "100000", "appeal": "", "color_primary": "#b8002e", "color_background": "#ffffff",
        "color_text": "#1a1a1a", "font_family": "", "allowed_origins": "", "poll_interval_seconds": "10",
        "thank_days": "30", "pending_cap_percent": "25",
        "milestones-TOTAL_FORMS": "0", "milestones-INITIAL_FORMS": "0",
        "milestones-MIN_NUM_FORMS": "0", "milestones-MAX_NUM_FORMS": "1000",
        **match,
    }


@pytest.fixture
def editor() -> Client:
    client = Client()
    client.force_login(staff_world()["editor"])
    return client


MATCH_FORM = {"match_sponsor": "Fondation Lumière", "match_ratio": "1", "match_cap_minor": "5 000",
              "match_starts_at_0": "01/01/2020", "match_starts_at_1": "00:00:00",
              "match_ends_at_0": "31/12/2099", "match_ends_at_1": "00:00:00"}


def test_an_editor_sets_a_match_in_major_units_and_banners_follow(editor, campaign):
    version = _counter(campaign).version
    response = editor.post(f"/admin/campaigns/campaign/{campaign.pk}/change/", _admin_form(campaign, **MATCH_FORM))
    assert response.status_code == 302, response.content.decode()[-3000:]
    stored = Campaign.objects.get(pk=campaign.pk)
    assert (stored.match_sponsor, stored.match_ratio, stored.match_cap_minor) == ("Fondation Lumière", 1, 500_000)
    assert _counter(campaign).version > version
    page = editor.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert "Doublement des dons" in page and 'value="5000,00"' in page


@pytest.mark.parametrize(("changes", "message"), [
    ({"match_ends_at_0": "01/01/2019"}, "L&#x27;abondement doit finir après son début."),
    ({"match_cap_minor": "0"}, "Le plafond de l&#x27;abondement doit être supérieur à zéro."),
    ({"match_cap_minor": "10 000 001"}, "Montant trop élevé"),
    ({"match_cap_minor": "beaucoup"}, "Montant invalide"),
    ({"match_ratio": "0"}, "supérieure ou égale à 1"),
    ({"match_cap_minor": ""}, "Un abondement a besoin de son plafond."),
])
def test_a_bad_match_in_the_admin_is_a_form_error_and_nothing_changes(editor, campaign, changes, message):
    version = _counter(campaign).version
    response = editor.post(f"/admin/campaigns/campaign/{campaign.pk}/change/",
                           _admin_form(campaign, **{**MATCH_FORM, **changes}))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert Campaign.objects.get(pk=campaign.pk).match_ratio is None
    assert _counter(campaign).version == version


# --- What readers see ---------------------------------------------------------------------------


def test_progress_json_gives_the_match_from_the_snapshot(client, campaign, django_capture_on_commit_callbacks,
                                                         django_assert_num_queries, django_assert_max_num_queries):
    assert client.get(URL).json()["match"] is None
    _match(campaign, django_capture_on_commit_callbacks, ratio=1, cap_minor=500_000)
    _gift(campaign, "a", 120_000, callbacks=django_capture_on_commit_callbacks)
    data = client.get(URL).json()
    stored = Campaign.objects.get(pk=campaign.pk)
    assert data["match"] == {
        "ratio": 1, "cap_minor": 500_000, "used_minor": 120_000,
        "ends_at": timezone.localtime(stored.match_ends_at).isoformat(),
        "remaining_minor": 380_000, "starts_at": timezone.localtime(stored.match_starts_at).isoformat(),
        "sponsor": "Fondation Lumière",
    }
    assert data["total_minor"] == 240_000  # the sponsor's money is in the total
    assert list(data)[:17] == ["slug", "title", "currency", "goal_minor", "total_minor", "pending_minor", "percent",
                               "donors", "donations", "status", "starts_at", "ends_at", "version", "updated_at",
                               "milestones", "next_milestone_minor", "match"]
    progress_cache.progress_local_forget()
    with django_assert_num_queries(0):  # a cache hit: the match state is in the snapshot
        assert client.get(URL).json()["match"]["used_minor"] == 120_000
    cache.delete(progress_cache.progress_key(campaign.slug))
    progress_cache.progress_local_forget()
    with django_assert_max_num_queries(1):  # cold: the counter and the campaign in one query
        assert client.get(URL).json()["match"]["remaining_minor"] == 380_000


def test_a_matched_webhook_publishes_its_snapshot_from_memory(client, campaign, django_capture_on_commit_callbacks,
                                                              django_assert_num_queries):
    _match(campaign, django_capture_on_commit_callbacks)
    no_receipt = {"name": "Marie", "email": "", "anonymous": False}
    post_webhook(client, webhook_body(event_id="evt_m", donation_id="don_m", amount_minor=700, donor=no_receipt,
                                      occurred_at=timezone.now().isoformat()))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        intake.payment_event_process(event_id=PaymentEvent.objects.get(event_id="evt_m").pk)
    with django_assert_num_queries(0):
        for callback in callbacks:
            callback()
    progress_cache.progress_local_forget()
    assert client.get(URL).json()["match"]["used_minor"] == 700


def _text(html: str) -> str:
    return re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", html))  # keeps the no-break spaces


@pytest.mark.parametrize(("ratio", "french", "english"), [
    (1, f"Chaque don est doublé jusqu'à {CAP_FR}", "Every gift is doubled up to €5,000.00"),
    (2, f"Chaque don est triplé jusqu'à {CAP_FR}", "Every gift is tripled up to €5,000.00"),
    (3, f"Chaque don est multiplié par 4 jusqu'à {CAP_FR}", "Every gift is multiplied by 4 up to €5,000.00"),
])
def test_the_banner_svg_and_page_announce_the_match_and_what_is_left(client, campaign,
                                                                      django_capture_on_commit_callbacks,
                                                                      ratio, french, english):
    _match(campaign, django_capture_on_commit_callbacks, ratio=ratio, cap_minor=500_000)
    _gift(campaign, "a", 10_000, callbacks=django_capture_on_commit_callbacks)
    left_fr = f"reste {(500_000 - 10_000 * ratio) // 100:,}".replace(",", NNBSP) + f",00{NBSP}€"
    left_en = f"€{(500_000 - 10_000 * ratio) // 100:,}.00 left"
    for path in ("/embed/test-campaign/", "/embed/test-campaign/?variant=bar", "/embed/test-campaign/frame/",
                 "/embed/test-campaign/?variant=compact", "/embed/test-campaign.svg", "/c/test-campaign/"):
        body = client.get(path).content.decode()
        text = _text(body).replace("&#x27;", "'")
        assert french in text, (path, repr(text))
        if "compact" not in path:
            assert left_fr in text, path
        if "svg" not in path and "compact" not in path:
            assert "grâce à Fondation Lumière" in text, path
    english_text = _text(client.get("/embed/test-campaign/?lang=en").content.decode())
    assert english in english_text and left_en in english_text
    assert "thanks to Fondation Lumière" in english_text
    assert english in client.get("/embed/test-campaign.svg?lang=en").content.decode()


def test_no_line_outside_the_window_or_once_the_cap_is_used(client, campaign, django_capture_on_commit_callbacks):
    now = timezone.now()
    _match(campaign, django_capture_on_commit_callbacks, starts_at=now + timedelta(days=1),
           ends_at=now + timedelta(days=2))
    assert "Chaque don" not in client.get("/embed/test-campaign/").content.decode()
    assert client.get(URL).json()["match"]["ratio"] == 1  # progress.json still says it is coming
    _match(campaign, django_capture_on_commit_callbacks, cap_minor=1_000)
    assert "Chaque don" in client.get("/embed/test-campaign/").content.decode()
    _gift(campaign, "a", 5_000, callbacks=django_capture_on_commit_callbacks)
    assert "Chaque don" not in client.get("/embed/test-campaign/").content.decode()
    assert client.get(URL).json()["match"]["remaining_minor"] == 0


def test_the_window_opening_changes_the_etag_without_a_new_version(client, campaign,
                                                                    django_capture_on_commit_callbacks, monkeypatch):
    now = timezone.now()
    _match(campaign, django_capture_on_commit_callbacks, starts_at=now + timedelta(hours=1),
           ends_at=now + timedelta(days=2))
    closed = client.get("/embed/test-campaign/")
    assert "Chaque don" not in closed.content.decode()
    later = now + timedelta(hours=2)
    monkeypatch.setattr("django.utils.timezone.now", lambda: later)
    opened = client.get("/embed/test-campaign/", headers={"If-None-Match": closed["ETag"]})
    assert opened.status_code == 200 and opened["ETag"] != closed["ETag"]
    assert "Chaque don est doublé" in opened.content.decode()


def test_the_dashboard_shows_match_money_apart(campaign):
    _match(campaign)
    ledger.donation_record(campaign=campaign, source=Donation.Source.MANUAL, external_id="cheque:1",
                           amount_minor=12_345, article_url="https://www.exemple.fr/a", at=timezone.now())
    from campaigns.selectors.dashboard import dashboard_data

    data = dashboard_data(campaign_id=campaign.pk)
    assert (data.total_minor, data.matched_minor, data.matched_donations) == (24_690, 12_345, 1)
    rows = {row["source"]: row["amount_minor"] for row in data.by_source}
    assert rows == {"manual": 12_345, "match": 12_345}
    assert data.top_articles[0]["amount_minor"] == 12_345  # the donor's money only
    client = Client()
    client.force_login(staff_world()["editor"])
    live = _text(client.get(f"/dashboard/{campaign.slug}/live/", headers={"HX-Request": "true"}).content.decode())
    assert f"Abondement du mécène 123,45{NBSP}€ sur 5{NNBSP}000,00{NBSP}€ · 1 don abondé" in live, repr(live)


# --- Reconcile ------------------------------------------------------------------------------


def test_reconcile_detects_tampered_match_counters_and_fix_repairs_them(campaign, capsys):
    _match(campaign)
    donation = _gift(campaign, "a", 1_000)
    CampaignTotal.objects.filter(campaign=campaign).update(matched_minor=999)
    Donation.objects.filter(pk=donation.pk).update(matched_minor=0)
    with pytest.raises(CommandError):
        call_command("reconcile")
    out = capsys.readouterr().out
    assert "matched_minor stored 999, ledger says 1000" in out
    assert f"matched_minor of donation {donation.pk} stored 0, ledger says 1000" in out
    call_command("reconcile", "--fix")
    donation.refresh_from_db()
    assert (_counter(campaign).matched_minor, donation.matched_minor) == (1_000, 1_000)
    call_command("reconcile")  # clean again


@pytest.mark.postgres
def test_reconcile_reports_a_gift_matched_twice_and_fix_cannot_hide_it(campaign, capsys):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    _match(campaign)
    donation = _gift(campaign, "a", 1_000)
    with connection.cursor() as cursor:  # tampering behind the constraint (rolled back with the test)
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # deferred foreign keys block an ALTER
        cursor.execute("DROP INDEX ledger_match_once")  # a partial unique constraint is an index
    LedgerEntry.objects.create(campaign=campaign, donation=donation, delta_minor=1_000, kind=LedgerEntry.Kind.MATCH)
    drifts = reconcile.totals_reconcile(slug=campaign.slug)
    assert any(not d.repairable and d.field == f"match entries of donation {donation.pk}" and d.stored == 2
               for d in drifts)
    with pytest.raises(CommandError, match="problem"):
        call_command("reconcile", "--fix")
    assert f"match entries of donation {donation.pk}: 2, at most 1 allowed" in capsys.readouterr().out


def test_a_matched_gift_shows_its_match_in_the_admin(campaign):
    _match(campaign)
    donation = _gift(campaign, "a", 12_345)
    client = Client()
    client.force_login(staff_world()["finance"])
    page = _text(client.get(f"/admin/campaigns/donation/{donation.pk}/change/").content.decode())
    assert re.search(r"Abondement du mécène\W+123,45\xa0€", page)
