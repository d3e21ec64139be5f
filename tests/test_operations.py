"""What an operator sees: /metrics (protected), the health endpoints, worker_health, the alert
rules and dashboard in deploy/, and the watchdog that replaces a worker that stopped consuming."""

from __future__ import annotations

import ipaddress
import json
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from bench.harness import Gunicorn
from campaigns.models import Heartbeat, PaymentEvent
from campaigns.services import heartbeat, intake, pledges, reconcile, statements
from campaigns.tasks import process_payment_event
from tests.factories import post_webhook, webhook_body
from tests.live import request
from tests.statement_files import Entry, camt053
from tests.test_settings import load_settings
from tests.worker import ROOT, CeleryProcess, process_env, wait_until

TOKEN = "metrics-token-for-the-tests"


def _metrics(client) -> dict[str, list]:
    """{sample name: [(labels, value), ...]} from /metrics."""
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.content
    return _parse(response.content.decode())


def _parse(text: str) -> dict[str, list]:
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def _value(samples: dict, name: str, **labels) -> float:
    matches = [value for got, value in samples[name] if all(got.get(k) == v for k, v in labels.items())]
    assert len(matches) == 1, (name, labels, samples.get(name))
    return matches[0]


# --- /metrics access ------------------------------------------------------------------------


def test_metrics_are_refused_until_an_operator_allows_someone(client, db, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = "", []
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer anything"}).status_code == 404


def test_metrics_answer_the_right_bearer_token_only(client, db, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = TOKEN, []
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong-token-wrong-token"}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": TOKEN}).status_code == 403  # not a bearer header
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert "jauge_database_up 1.0" in response.content.decode()


def test_metrics_answer_an_allowed_network_only(client, db, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]
    assert client.get("/metrics").status_code == 403  # the test client is 127.0.0.1
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="fd00::1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="11.0.0.1").status_code == 403


@pytest.mark.parametrize(("name", "value"), [("METRICS_TOKEN", "short"), ("METRICS_ALLOWED_NETWORKS", "10.0.0.0/33"),
                                             ("HEARTBEAT_MAX_AGE_SECONDS", "5"), ("DB_CONNECT_TIMEOUT", "0"),
                                             ("WORKER_STALE_EXIT_SECONDS", "60")])
def test_a_bad_operations_setting_stops_the_process(name, value):
    result = load_settings(**{name: value, "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x"})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and name in result.stderr


# --- /metrics content -----------------------------------------------------------------------


def _world(client, campaign) -> None:
    """Three applied gifts, one failed event, one deferred refund, one event still waiting,
    one pending pledge, a reconcile run and a heartbeat."""
    for i in range(3):
        assert post_webhook(client, webhook_body(event_id=f"evt_m{i}", donation_id=f"don_m{i}",
                                                 amount_minor=1000)).status_code == 202
    assert post_webhook(client, webhook_body(event_id="evt_bad", donation_id="don_bad", campaign="nowhere")
                        ).status_code == 202
    assert post_webhook(client, webhook_body(event_id="evt_ref", donation_id="don_later", type="donation.refunded",
                                             amount_minor=500)).status_code == 202
    assert post_webhook(client, webhook_body(event_id="evt_wait", donation_id="don_wait")).status_code == 202
    assert post_webhook(client, b"{not json").status_code == 400
    assert post_webhook(client, webhook_body(event_id="evt_m0", donation_id="don_m0", amount_minor=1000)
                        ).status_code == 200
    for event in PaymentEvent.objects.exclude(event_id="evt_wait"):
        process_payment_event(event.pk)
    PaymentEvent.objects.filter(event_id="evt_wait").update(received_at=timezone.now() - timedelta(minutes=7))
    pledges.pledge_create(campaign=campaign, provider="bank_transfer", amount_minor=4200, donor_email="p@example.org")
    reconcile.totals_reconcile()
    heartbeat.heartbeat_record(key=heartbeat.BEAT)
    heartbeat.worker_heartbeat_record(hostname="celery@box")
    # A bank statement with one line nobody has settled (no reference, no pledge of that amount).
    statements.statement_import(data=camt053([Entry("12.34", "DON SANS REFERENCE")]), file_name="s.xml",
                                format="camt053")


def test_metrics_report_what_waits_fails_and_is_due(client, campaign, settings):
    settings.METRICS_TOKEN = TOKEN
    _world(client, campaign)
    samples = _metrics(client)
    assert _value(samples, "jauge_payment_events", status="processed") == 3
    assert _value(samples, "jauge_payment_events", status="failed") == 1
    assert _value(samples, "jauge_payment_events", status="deferred") == 1
    assert _value(samples, "jauge_payment_events", status="received") == 1
    assert _value(samples, "jauge_payment_events_failed") == 1
    assert _value(samples, "jauge_refunds_deferred") == 1
    assert 7 * 60 - 5 < _value(samples, "jauge_payment_event_oldest_unprocessed_age_seconds") < 8 * 60
    assert _value(samples, "jauge_receipts_due") == 3  # the three gifts (donor e-mail given), none sent
    assert _value(samples, "jauge_pledges_pending") == 1
    assert _value(samples, "jauge_pledges_pending_minor", currency="EUR") == 4200
    assert _value(samples, "jauge_reconcile_drift") == 0
    assert _value(samples, "jauge_statement_lines_waiting") == 1
    assert _value(samples, "jauge_worker_heartbeat_age_seconds", worker="celery@box") < 60
    assert _value(samples, "jauge_workers_fresh") == 1
    assert _value(samples, "jauge_webhook_responses_total", provider="generic", code="202") == 6
    assert _value(samples, "jauge_webhook_responses_total", provider="generic", code="200") == 1
    assert _value(samples, "jauge_webhook_responses_total", provider="generic", code="400") == 1
    # Every event that left the queue observed once (the failed one too); the deferred refund
    # is not applied yet, the waiting event not taken.
    assert _value(samples, "jauge_event_latency_seconds_count") == 4
    assert _value(samples, "jauge_event_latency_seconds_bucket", le="+Inf") == 4


def test_metrics_report_the_drift_the_last_reconcile_found(client, campaign, settings):
    from campaigns.models import CampaignTotal

    settings.METRICS_TOKEN = TOKEN
    _world(client, campaign)
    CampaignTotal.objects.filter(campaign=campaign).update(total_minor=1)  # a counter gone wrong
    reconcile.totals_reconcile()
    assert _value(_metrics(client), "jauge_reconcile_drift") == 1
    reconcile.totals_reconcile(fix=True)
    assert _value(_metrics(client), "jauge_reconcile_drift") == 0


@pytest.mark.postgres
@pytest.mark.redis
def test_webhook_answer_counts_are_right_with_several_gunicorn_workers(transactional_db, campaign):
    env = process_env(METRICS_TOKEN=TOKEN)
    from tests.live import post_signed

    with Gunicorn(env, workers=3) as web:
        # The port opens before the three workers have imported Django: on a loaded 2-core machine a
        # first request can wait well past the usual 10 s for one of them (a hang still fails).
        for i in range(12):
            body = webhook_body(event_id=f"evt_g{i}", donation_id=f"don_g{i}")
            assert post_signed(web.url, body, timeout=90)[0] == 202
        for i in range(4):
            body = webhook_body(event_id=f"evt_g{i}", donation_id=f"don_g{i}")
            assert post_signed(web.url, body, timeout=90)[0] == 200
        for _ in range(3):
            status, _, _ = request("POST", f"{web.url}/hooks/generic/", b"{}", {"X-Jauge-Signature": "t=1,v1=00"})
            assert status == 401
        # Any of the three processes answers the scrape, each with every process's counts.
        for _ in range(9):
            status, _, body = request("GET", f"{web.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            assert status == 200
            samples = _parse(body.decode())
            assert _value(samples, "jauge_webhook_responses_total", provider="generic", code="202") == 12
            assert _value(samples, "jauge_webhook_responses_total", provider="generic", code="200") == 4
            assert _value(samples, "jauge_webhook_responses_total", provider="generic", code="401") == 3


# --- health endpoints and worker_health -----------------------------------------------------


def test_live_answers_without_asking_anything(client, db):
    response = client.get("/healthz/live")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_ready_wants_the_database_and_a_fresh_worker_heartbeat(client, db, settings):
    response = client.get("/healthz/ready")
    assert (response.status_code, response.json()["workers"]) == (503, "none")
    heartbeat.worker_heartbeat_record(hostname="celery@a")
    response = client.get("/healthz/ready")
    assert (response.status_code, response.json()["database"], response.json()["workers"]) == (200, "ok", "ok")
    Heartbeat.objects.update(at=timezone.now() - timedelta(seconds=settings.HEARTBEAT_MAX_AGE_SECONDS + 5))
    response = client.get("/healthz/ready")
    assert (response.status_code, response.json()["workers"]) == (503, "stale")


def test_healthz_keeps_its_contract_and_says_whether_it_stores(client, db):
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["broker"] == "ok"
    assert body["storing"] is True


def _exit_code(*args) -> int:
    try:
        call_command("worker_health", *args)
    except SystemExit as exc:
        return exc.code
    return 0


def test_worker_health_exits_by_the_age_of_the_heartbeat(db, settings):
    assert _exit_code() == 1  # no worker ever seen
    assert _exit_code("--hostname", "celery@a") == 1
    heartbeat.worker_heartbeat_record(hostname="celery@a")
    assert _exit_code("--hostname", "celery@a") == 0
    assert _exit_code() == 0
    assert _exit_code("--hostname", "celery@b") == 1
    assert _exit_code("--beat") == 1
    heartbeat.heartbeat_record(key=heartbeat.BEAT)
    assert _exit_code("--beat") == 0
    Heartbeat.objects.update(at=timezone.now() - timedelta(seconds=settings.HEARTBEAT_MAX_AGE_SECONDS + 1))
    assert _exit_code("--hostname", "celery@a") == 1
    assert _exit_code("--hostname", "celery@a", "--max-age", "3600") == 0


def test_workers_gone_for_a_day_are_forgotten(db):
    heartbeat.worker_heartbeat_record(hostname="celery@old")
    heartbeat.worker_heartbeat_record(hostname="celery@new")
    Heartbeat.objects.filter(key="worker:celery@old").update(at=timezone.now() - timedelta(days=2))
    heartbeat.heartbeat_record(key=heartbeat.RECONCILE, at=timezone.now() - timedelta(days=2))
    assert heartbeat.workers_forget() == 1
    assert set(heartbeat.heartbeats_read()) == {"celery@new"}
    assert Heartbeat.objects.filter(key=heartbeat.RECONCILE).exists()  # not a worker: kept


@pytest.mark.postgres
@pytest.mark.worker
def test_a_worker_that_stopped_consuming_exits_to_be_replaced(transactional_db, campaign, tmp_path):
    """A live worker that takes nothing (here: it listens on a queue nobody sends to) while an
    event waits shuts itself down; an idle worker with nothing waiting stays."""
    env = process_env(HEARTBEAT_SECONDS="1", HEARTBEAT_MAX_AGE_SECONDS="2", WORKER_STALE_EXIT_SECONDS="4",
                      JAUGE_VAR_DIR=str(tmp_path))
    worker = CeleryProcess(["worker", "-Q", f"{env['CELERY_QUEUE']}-deaf", "--concurrency", "1", "--loglevel",
                            "info", "--without-mingle", "--without-gossip", "--hostname", "deaf@%h"],
                           env, ready_marker="ready.")
    try:
        time.sleep(8)
        assert worker.proc.poll() is None, worker.output()[-2000:]  # nothing waits: it stays
        from campaigns.providers.generic import GenericWebhooks

        event = GenericWebhooks().parse(webhook_body(event_id="evt_w", donation_id="don_w"))
        intake.payment_event_receive(provider="generic", event=event, body=b"{}", headers={})
        PaymentEvent.objects.update(received_at=timezone.now() - timedelta(seconds=30))
        wait_until(lambda: worker.proc.poll() is not None, timeout=90, interval=0.5,
                   message=f"the stuck worker to exit:\n{worker.output()[-3000:]}")
        assert "stopped consuming" in worker.output()
    finally:
        worker.stop()


# --- deploy/: alert rules and dashboard -----------------------------------------------------

METRIC_NAME = re.compile(r"\bjauge_[a-z_]+")


def _exported_names(client) -> set[str]:
    return set(_metrics(client))


def test_alert_rules_parse_and_use_metrics_that_exist(client, campaign, settings):
    settings.METRICS_TOKEN = TOKEN
    _world(client, campaign)
    exported = _exported_names(client)
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    alerts = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    assert {"JaugeEventsWaiting", "JaugeLedgerDrift", "JaugeWorkerHeartbeatStale"} <= set(alerts)
    assert "> 300" in alerts["JaugeEventsWaiting"]["expr"]
    assert "!= 0" in alerts["JaugeLedgerDrift"]["expr"]
    for name, rule in alerts.items():
        used = set(METRIC_NAME.findall(rule["expr"]))
        assert used, name
        assert used <= exported, (name, used - exported)


def test_the_grafana_dashboard_parses_and_uses_metrics_that_exist(client, campaign, settings):
    settings.METRICS_TOKEN = TOKEN
    _world(client, campaign)
    exported = _exported_names(client)
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "jauge.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {name for expr in exprs for name in METRIC_NAME.findall(expr)}
    assert len(used) >= 12
    assert used <= exported, used - exported


def test_compose_runs_a_backup_service_and_checks_worker_heartbeats():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    backup = services["backup"]
    assert any("deploy/backup.sh" in volume for volume in backup["volumes"])
    assert any(volume.startswith("backups:") for volume in backup["volumes"])
    assert backup["environment"]["BACKUP_KEEP_DAYS"]
    assert "worker_health" in " ".join(services["worker"]["healthcheck"]["test"])
    assert "worker_health" in " ".join(services["beat"]["healthcheck"]["test"])


def test_every_new_setting_is_listed_in_env_example():
    listed = Path(ROOT / ".env.example").read_text()
    for name in ("DB_CONNECT_TIMEOUT", "HEARTBEAT_SECONDS", "HEARTBEAT_MAX_AGE_SECONDS", "WORKER_STALE_EXIT_SECONDS",
                 "METRICS_TOKEN", "METRICS_ALLOWED_NETWORKS", "BACKUP_INTERVAL_SECONDS", "BACKUP_KEEP_DAYS"):
        assert f"{name}=" in listed, name
