"""Milestones and stretch goals: in the snapshot and progress.json, on the banner and the SVG,
recorded once when reached (even under concurrent gifts), and refused when typed wrong."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from campaigns import progress_cache
from campaigns.models import Campaign, CampaignTotal, Milestone, PaymentEvent
from campaigns.selectors import progress as selectors
from campaigns.services import intake, ledger
from campaigns.services.campaigns import milestones_save
from campaigns.services.milestones import milestone_emails_send
from tests.factories import post_webhook, webhook_body
from tests.staff_world import staff_world
from tests.threads import gifts_from_threads

pytestmark = pytest.mark.django_db

URL = "/api/campaigns/test-campaign/progress.json"


def _milestones(campaign: Campaign, callbacks, *amounts_labels: tuple[int, str]) -> None:
    with callbacks(execute=True):
        milestones_save(campaign_id=campaign.pk, deleted=[], changed=[
            Milestone(amount_minor=amount, label=label) for amount, label in amounts_labels
        ])


def _give(campaign: Campaign, callbacks, amount_minor: int, key: str) -> None:
    with callbacks(execute=True):
        ledger.donation_record(campaign=campaign, source="manual", external_id=key, amount_minor=amount_minor)


def test_progress_json_lists_the_milestones_and_the_next_one(
    client, campaign, django_capture_on_commit_callbacks, django_assert_num_queries, django_assert_max_num_queries
):
    _milestones(campaign, django_capture_on_commit_callbacks,
                (500_000, "La moitié"), (250_000, "Un quart"), (1_500_000, "Un numéro spécial"))
    _give(campaign, django_capture_on_commit_callbacks, 300_000, "a")
    data = client.get(URL).json()
    assert data["milestones"] == [
        {"amount_minor": 250_000, "label": "Un quart", "reached": True},
        {"amount_minor": 500_000, "label": "La moitié", "reached": False},
        {"amount_minor": 1_500_000, "label": "Un numéro spécial", "reached": False},
    ]
    assert data["next_milestone_minor"] == 500_000
    assert data["match"] is None
    assert data["total_minor"] == 300_000 and data["goal_minor"] == 1_000_000  # every older field stays
    # A cache hit: no query at all, milestones included.
    progress_cache.progress_local_forget()
    with django_assert_num_queries(0):
        assert client.get(URL).json()["next_milestone_minor"] == 500_000
    # A cold cache: still one query (the milestones come with the campaign and its counter).
    cache.delete(progress_cache.progress_key(campaign.slug))
    progress_cache.progress_local_forget()
    with django_assert_max_num_queries(1):
        assert client.get(URL).json()["milestones"][0]["label"] == "Un quart"


def test_a_webhook_publishes_the_milestones_from_memory(client, campaign, django_capture_on_commit_callbacks,
                                                        django_assert_num_queries):
    _milestones(campaign, django_capture_on_commit_callbacks, (500, "Premier palier"), (5_000, "Deuxième"))
    no_receipt = {"name": "Marie", "email": "", "anonymous": False}
    post_webhook(client, webhook_body(event_id="evt_m", donation_id="don_m", amount_minor=700, donor=no_receipt))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        intake.payment_event_process(event_id=PaymentEvent.objects.get(event_id="evt_m").pk)
    with django_assert_num_queries(0):
        for callback in callbacks:
            callback()
    progress_cache.progress_local_forget()
    snapshot = selectors.campaign_progress(slug=campaign.slug)
    assert [m["reached"] for m in snapshot["milestones"]] == [True, False]
    assert snapshot["next_milestone_minor"] == 5_000
    assert Milestone.objects.get(amount_minor=500).reached_at is not None
    assert Milestone.objects.get(amount_minor=5_000).reached_at is None


def test_editing_milestones_bumps_the_version_and_the_banner_follows(client, campaign,
                                                                     django_capture_on_commit_callbacks):
    before = client.get(URL)
    _milestones(campaign, django_capture_on_commit_callbacks, (400_000, "Un local"))
    after = client.get(URL, HTTP_IF_NONE_MATCH=before["ETag"])
    assert after.status_code == 200 and after["ETag"] != before["ETag"]
    assert after.json()["version"] > before.json()["version"]
    assert after.json()["next_milestone_minor"] == 400_000


def test_the_banner_and_the_svg_show_the_next_milestone(client, campaign, django_capture_on_commit_callbacks):
    _milestones(campaign, django_capture_on_commit_callbacks, (100_000, "Un mois de salaire"), (400_000, "Un local"))
    _give(campaign, django_capture_on_commit_callbacks, 200_000, "a")
    banner = client.get("/embed/test-campaign/").content.decode()
    assert "Prochain palier : <strong>4\u202f000,00\u00a0€</strong>" in banner
    assert "Un local" in banner and "Un mois de salaire" not in banner
    assert "sur un objectif de 10\u202f000,00\u00a0€" in banner
    assert 'style="width: 20.00%"' in banner  # below the goal the bar measures the goal
    compact = client.get("/embed/test-campaign/?variant=compact").content.decode()
    assert "prochain palier : 4\u202f000,00\u00a0€" in compact
    bar = client.get("/embed/test-campaign/?variant=bar&lang=en").content.decode()
    assert "Next milestone: <strong>€4,000.00</strong>" in bar
    svg = client.get("/embed/test-campaign.svg").content.decode()
    assert "Prochain palier : 4\u202f000,00\u00a0€ — Un local" in svg
    assert 'height="120"' in svg  # one more line for it


def test_past_the_goal_the_bar_rescales_to_the_next_stretch_goal(client, campaign, django_capture_on_commit_callbacks):
    _milestones(campaign, django_capture_on_commit_callbacks, (500_000, "La moitié"), (1_500_000, "Un reportage"))
    _give(campaign, django_capture_on_commit_callbacks, 1_200_000, "a")
    banner = client.get("/embed/test-campaign/").content.decode()
    # 12 000 € of a 15 000 € stretch goal: 80 % of the bar; the text still names the first goal.
    assert 'style="width: 80.00%"' in banner
    assert "sur un objectif de 10\u202f000,00\u00a0€" in banner
    assert ("Objectif de 10\u202f000,00\u00a0€ atteint ! Prochain objectif : <strong>15\u202f000,00\u00a0€</strong>"
            in banner)
    assert "Un reportage" in banner
    assert client.get(URL).json()["percent"] == 120.0  # the contract's percent is still of the goal
    svg = client.get("/embed/test-campaign.svg").content.decode()
    assert 'width="454.4"' in svg  # 80 % of the 568-pixel track
    assert "Objectif de 10\u202f000,00\u00a0€ atteint ! Prochain objectif : 15\u202f000,00\u00a0€" in svg
    # Past the last milestone too: a full bar, no next one.
    _give(campaign, django_capture_on_commit_callbacks, 400_000, "b")
    banner = client.get("/embed/test-campaign/").content.decode()
    assert 'style="width: 100.00%"' in banner and "Prochain" not in banner
    assert client.get(URL).json()["next_milestone_minor"] is None


def test_a_refund_below_a_milestone_keeps_when_it_was_first_reached(campaign, django_capture_on_commit_callbacks):
    _milestones(campaign, django_capture_on_commit_callbacks, (1_000, "Dix euros"))
    _give(campaign, django_capture_on_commit_callbacks, 1_500, "a")
    first = Milestone.objects.get().reached_at
    donation = campaign.donations.get()
    with django_capture_on_commit_callbacks(execute=True), ledger.donation_locked(donation_id=donation.pk) as (t, d):
        ledger.donation_refund(total=t, donation=d, amount_minor=1_000)
    _give(campaign, django_capture_on_commit_callbacks, 2_000, "b")
    assert Milestone.objects.get().reached_at == first
    assert selectors.progress_build(campaign_id=campaign.pk)["milestones"][0]["reached"] is True


def test_the_dashboard_timeline_shows_when_each_milestone_was_reached(client, campaign,
                                                                     django_capture_on_commit_callbacks):
    _milestones(campaign, django_capture_on_commit_callbacks, (1_000, "Dix euros"), (2_000_000, "Deux numéros"))
    _give(campaign, django_capture_on_commit_callbacks, 1_500, "a")
    client.force_login(staff_world()["editor"])
    body = client.get(f"/dashboard/{campaign.slug}/").content.decode()
    assert 'id="dash-milestones"' in body
    reached, later = body.split('id="dash-milestones"')[1].split("</ol>")[0].split("</li>")[:2]
    assert "Dix euros" in reached and "atteint le" in reached and "<time" in reached
    assert "Deux numéros" in later and "au-delà de l'objectif" in later and "pas encore atteint" in later


def test_editors_are_told_once_by_email_after_the_commit(campaign, settings, django_capture_on_commit_callbacks):
    settings.MILESTONE_EMAILS = ["redaction@example.org", "chef@example.org"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    _milestones(campaign, django_capture_on_commit_callbacks, (1_000, "Dix euros"), (2_000, "Vingt euros"))
    from config.celery import app

    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            ledger.donation_record(campaign=campaign, source="manual", external_id="a", amount_minor=2_500)
        assert mail.outbox == []  # nothing before the commit
        with django_capture_on_commit_callbacks(execute=True):
            for callback in callbacks:
                callback()
    finally:
        app.conf.task_always_eager = False
    assert len(mail.outbox) == 2
    assert {tuple(message.to) for message in mail.outbox} == {("redaction@example.org", "chef@example.org")}
    assert "Vingt euros" in mail.outbox[1].subject
    assert milestone_emails_send(campaign_id=campaign.pk) == 0  # claimed once
    assert len(mail.outbox) == 2


def test_no_email_without_milestone_emails_and_none_for_a_milestone_added_below_the_total(
    campaign, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    _milestones(campaign, django_capture_on_commit_callbacks, (1_000, "Dix euros"))
    _give(campaign, django_capture_on_commit_callbacks, 1_500, "a")
    assert milestone_emails_send(campaign_id=campaign.pk) == 0
    settings.MILESTONE_EMAILS = ["redaction@example.org"]
    _milestones(campaign, django_capture_on_commit_callbacks, (500, "Cinq euros"))
    added = Milestone.objects.get(amount_minor=500)
    assert added.reached_at is not None  # already passed: reached from now on
    assert milestone_emails_send(campaign_id=campaign.pk) == 0
    assert mail.outbox == []


# --- Bad input -------------------------------------------------------------------------------


def _admin_form(campaign: Campaign, rows: list[tuple[str, str]], existing: list[Milestone] = ()) -> dict:
    data = {
        "title": campaign.title, "slug": campaign.slug, "status": campaign.status, "locale": "fr",
        "starts_at_0": campaign.starts_at.strftime("%d/%m/%Y"), "starts_at_1": "00:00:00",
        "ends_at_0": campaign.ends_at.strftime("%d/%m/%Y"), "ends_at_1": "23:59:59",
        "currency": "EUR", "goal_minor": "10 000", "preset_amounts_minor": "", "min_amount_minor": "1",
        "max_amount_minor": "100000", "appeal": "", "color_primary": "#b8002e", "color_background": "#ffffff",
        "color_text": "#1a1a1a", "font_family": "", "allowed_origins": "", "poll_interval_seconds": "10",
        "thank_days": "30", "pending_cap_percent": "25",
        "milestones-TOTAL_FORMS": str(len(existing) + len(rows)), "milestones-INITIAL_FORMS": str(len(existing)),
        "milestones-MIN_NUM_FORMS": "0", "milestones-MAX_NUM_FORMS": "1000",
    }
    for index, milestone in enumerate(existing):
        data[f"milestones-{index}-id"] = str(milestone.pk)
        data[f"milestones-{index}-campaign"] = str(campaign.pk)
        data[f"milestones-{index}-amount_minor"] = str(milestone.amount_minor // 100)
        data[f"milestones-{index}-label"] = milestone.label
    for index, (amount, label) in enumerate(rows, start=len(existing)):
        data[f"milestones-{index}-campaign"] = str(campaign.pk)
        data[f"milestones-{index}-amount_minor"] = amount
        data[f"milestones-{index}-label"] = label
    return data


@pytest.fixture
def editor() -> Client:
    client = Client()
    client.force_login(staff_world()["editor"])
    return client


def test_an_editor_adds_milestones_in_major_units(editor, campaign):
    version = CampaignTotal.objects.get(campaign=campaign).version
    response = editor.post(f"/admin/campaigns/campaign/{campaign.pk}/change/",
                           _admin_form(campaign, [("5 000", "La moitié"), ("15 000,50", "Un reportage")]))
    assert response.status_code == 302, response.content.decode()[-3000:]
    assert list(Milestone.objects.values_list("amount_minor", "label")) == [
        (500_000, "La moitié"), (1_500_050, "Un reportage")]
    assert CampaignTotal.objects.get(campaign=campaign).version > version
    page = editor.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert 'value="5000,00"' in page  # shown back in major units


@pytest.mark.parametrize(("amount", "message"), [
    ("0", "Un palier doit être supérieur à zéro."),
    ("-5", "Montant invalide"),
    ("10 000 001", "Montant trop élevé"),
    ("beaucoup", "Montant invalide"),
])
def test_an_amount_out_of_range_is_refused_and_nothing_changes(editor, campaign, django_capture_on_commit_callbacks,
                                                               amount, message):
    _milestones(campaign, django_capture_on_commit_callbacks, (300_000, "Existant"))
    existing = list(Milestone.objects.all())
    version = CampaignTotal.objects.get(campaign=campaign).version
    response = editor.post(f"/admin/campaigns/campaign/{campaign.pk}/change/",
                           _admin_form(campaign, [(amount, "Mauvais")], existing))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert list(Milestone.objects.values_list("amount_minor", "label")) == [(300_000, "Existant")]
    assert CampaignTotal.objects.get(campaign=campaign).version == version


def test_a_duplicate_amount_is_refused_in_one_form_and_against_a_stored_one(editor, campaign,
                                                                          django_capture_on_commit_callbacks):
    _milestones(campaign, django_capture_on_commit_callbacks, (300_000, "Existant"))
    existing = list(Milestone.objects.all())
    for rows in ([("3 000", "Doublon")], [("4 000", "Un"), ("4000,00", "Deux")]):
        response = editor.post(f"/admin/campaigns/campaign/{campaign.pk}/change/",
                               _admin_form(campaign, rows, existing))
        assert response.status_code == 200
        assert "errorlist" in response.content.decode()
        assert list(Milestone.objects.values_list("amount_minor", "label")) == [(300_000, "Existant")]


def test_the_service_refuses_bad_milestones_and_the_database_too(campaign):
    from django.core.exceptions import ValidationError
    from django.db import IntegrityError, transaction

    with pytest.raises(ValidationError):
        milestones_save(campaign_id=campaign.pk, deleted=[], changed=[
            Milestone(amount_minor=1_000, label="a"), Milestone(amount_minor=1_000, label="b")])
    with pytest.raises(ValidationError):
        milestones_save(campaign_id=campaign.pk, deleted=[], changed=[Milestone(amount_minor=0, label="zéro")])
    assert not Milestone.objects.exists()
    with pytest.raises(IntegrityError), transaction.atomic():
        Milestone.objects.create(campaign=campaign, amount_minor=1_000_000_001, label="trop")


# --- Concurrency -------------------------------------------------------------------------------

THREADS = 6
GIFTS_PER_THREAD = 15


@pytest.mark.postgres
def test_each_milestone_is_recorded_once_under_concurrent_gifts(transactional_db, campaign):
    """Gifts from several threads, each in its own transaction, cross the milestones together: a
    trigger (in this test's database) logs every change of reached_at — one per milestone."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    milestones_save(campaign_id=campaign.pk, deleted=[], changed=[
        Milestone(amount_minor=amount, label=f"{amount}") for amount in (5_000, 20_000, 45_000, 90_000, 10**8)])
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE milestone_reach_log (milestone_id bigint, at timestamptz)")
        cursor.execute(
            "CREATE FUNCTION milestone_reach_log() RETURNS trigger AS $$ BEGIN "
            "INSERT INTO milestone_reach_log VALUES (NEW.id, NEW.reached_at); RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            f"CREATE TRIGGER milestone_reach_log AFTER UPDATE OF reached_at ON {Milestone._meta.db_table} "
            "FOR EACH ROW WHEN (OLD.reached_at IS DISTINCT FROM NEW.reached_at) EXECUTE FUNCTION milestone_reach_log()"
        )
    try:
        errors = gifts_from_threads(campaign, threads=THREADS, per_thread=GIFTS_PER_THREAD, amount_minor=1_000)
        assert not errors, errors
        assert CampaignTotal.objects.get(campaign=campaign).total_minor == 90_000
        with connection.cursor() as cursor:
            cursor.execute("SELECT milestone_id, count(*) FROM milestone_reach_log GROUP BY milestone_id")
            logged = dict(cursor.fetchall())
        reached = dict(Milestone.objects.filter(reached_at__isnull=False).values_list("pk", "amount_minor"))
        assert sorted(reached.values()) == [5_000, 20_000, 45_000, 90_000]
        assert logged == {pk: 1 for pk in reached}
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER IF EXISTS milestone_reach_log ON {Milestone._meta.db_table}")
            cursor.execute("DROP FUNCTION IF EXISTS milestone_reach_log()")
            cursor.execute("DROP TABLE IF EXISTS milestone_reach_log")


def test_finance_reads_milestones_in_euros_and_cannot_change_them(campaign, django_capture_on_commit_callbacks):
    _milestones(campaign, django_capture_on_commit_callbacks, (1_500_000, "Un reportage"))
    client = Client()
    client.force_login(staff_world()["finance"])
    page = client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert "15\u202f000,00\u00a0€" in page and "Un reportage" in page
    assert 'name="milestones-0-amount_minor"' not in page


# --- Property ----------------------------------------------------------------------------------

class _Rollback(Exception):
    pass


steps = st.lists(
    st.one_of(
        st.tuples(st.just("give"), st.integers(min_value=1, max_value=4_000)),
        st.tuples(st.just("refund"), st.integers(min_value=1, max_value=4_000)),
    ),
    min_size=1,
    max_size=12,
)


@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps, amounts=st.sets(st.integers(min_value=1, max_value=12_000), min_size=1, max_size=5))
def test_any_order_of_gifts_and_refunds_records_each_milestone_once_at_its_first_crossing(campaign, steps, amounts):
    try:
        with transaction.atomic():
            _walk(campaign, steps, sorted(amounts))
            raise _Rollback
    except _Rollback:
        pass


def _walk(campaign: Campaign, steps: list[tuple[str, int]], amounts: list[int]) -> None:
    milestones_save(campaign_id=campaign.pk, deleted=[],
                    changed=[Milestone(amount_minor=amount, label=str(amount)) for amount in amounts])
    peak = total = 0
    seen: dict[int, object] = {}
    for index, (kind, amount) in enumerate(steps):
        if kind == "give":
            ledger.donation_record(campaign=campaign, source="manual", external_id=f"p{index}", amount_minor=amount)
            total += amount
        else:
            donation = campaign.donations.filter(refunded_minor__lt=F("amount_minor")).order_by("pk").first()
            if donation is None:
                continue
            amount = min(amount, donation.amount_minor - donation.refunded_minor)
            with ledger.donation_locked(donation_id=donation.pk) as (locked_total, locked):
                ledger.donation_refund(total=locked_total, donation=locked, amount_minor=amount)
            total -= amount
        peak = max(peak, total)
        reached = dict(Milestone.objects.filter(campaign=campaign).values_list("amount_minor", "reached_at"))
        # Reached exactly when the total has ever been at or above it; once set, never moved.
        assert {a for a, at in reached.items() if at is not None} == {a for a in amounts if a <= peak}
        for a, at in reached.items():
            if a in seen:
                assert at == seen[a]
            elif at is not None:
                seen[a] = at
        snapshot = selectors.progress_build(campaign_id=campaign.pk)
        assert snapshot["total_minor"] == total
        assert [m["reached"] for m in snapshot["milestones"]] == [a <= total for a in amounts]
        assert snapshot["next_milestone_minor"] == next((a for a in amounts if a > total), None)
    # A bigger milestone is never reached before a smaller one.
    times = [seen[a] for a in amounts if a in seen]
    assert times == sorted(times)


# --- A real worker -----------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.worker
def test_a_real_worker_records_the_milestones_and_mails_the_editors_once(transactional_db, campaign, client):
    from tests.worker import celery_worker, wait_until

    milestones_save(campaign_id=campaign.pk, deleted=[], changed=[
        Milestone(amount_minor=3_000, label="Premier"), Milestone(amount_minor=6_000, label="Second"),
        Milestone(amount_minor=10**8, label="Lointain")])
    with celery_worker(concurrency=2, MILESTONE_EMAILS="redaction@example.org", EMAIL_HOST="") as worker:
        for i in range(8):
            body = webhook_body(event_id=f"evt_ms{i}", donation_id=f"don_ms{i}", amount_minor=1_000,
                                donor={"name": "", "email": "", "anonymous": False})
            assert post_webhook(client, body).status_code == 202
        wait_until(lambda: CampaignTotal.objects.get(campaign=campaign).total_minor == 8_000, timeout=60,
                   message="every gift to be applied")
        wait_until(lambda: Milestone.objects.filter(notified_at__isnull=False).count() == 2
                   and worker.output().count("To: redaction@example.org") == 2,
                   timeout=30, message="both milestones to be announced")
        output = worker.output()
    assert output.count("To: redaction@example.org") == 2  # the console mail backend, once each
    assert Milestone.objects.get(label="Lointain").reached_at is None
