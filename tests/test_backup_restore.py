"""Backups and the restore drill: deploy/backup.sh dumps and prunes; a dump restored over a
database that moved on brings the banner back to the restored figure (the cached snapshot steps
back) and reconcile finds nothing to repair."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from bench.harness import BenchDatabase, Gunicorn, django_run, manage
from tests import worker
from tests.factories import webhook_body
from tests.live import get_json

pytestmark = [pytest.mark.postgres]

BACKUP = worker.ROOT / "deploy" / "backup.sh"


def _backup_once(database_url: str, folder: Path, keep_days: int = 7) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database_url, "BACKUP_DIR": str(folder), "BACKUP_KEEP_DAYS": str(keep_days),
           "BACKUP_ONCE": "true"}
    return subprocess.run(["sh", str(BACKUP)], env=env, capture_output=True, text=True, timeout=120)


def _age(path: Path, days: float) -> None:
    then = time.time() - days * 86400
    os.utime(path, (then, then))


def test_backup_writes_a_restorable_dump_and_prunes_old_ones(transactional_db, campaign, tmp_path):
    old, recent = tmp_path / "jauge-20200101T000000Z.dump", tmp_path / "jauge-20200102T000000Z.dump"
    for path, days in ((old, 9), (recent, 2)):
        path.write_bytes(b"an older dump")
        _age(path, days)
    result = _backup_once(worker.test_database_url(), tmp_path, keep_days=7)
    assert result.returncode == 0, result.stderr
    dumps = sorted(tmp_path.glob("jauge-*.dump"))
    assert old not in dumps and recent in dumps and len(dumps) == 2
    listing = subprocess.run(["pg_restore", "--list", str(dumps[-1])], capture_output=True, text=True, check=True)
    assert "campaigns_ledgerentry" in listing.stdout
    assert not list(tmp_path.glob(".*partial"))


def test_a_failing_backup_keeps_every_older_dump(tmp_path):
    kept = tmp_path / "jauge-20200101T000000Z.dump"
    kept.write_bytes(b"the only good dump")
    _age(kept, 30)
    result = _backup_once("postgres://postgres@127.0.0.1:1/nothing", tmp_path, keep_days=1)
    assert result.returncode == 1
    assert "pg_dump failed" in result.stderr
    assert kept.exists() and not list(tmp_path.glob(".*partial"))


def _apply(env: dict[str, str], *, prefix: str, count: int, amount: int) -> None:
    """Store and apply `count` gifts in the database of `env`, as a worker would (commit, then
    publish the snapshot)."""
    bodies = [webhook_body(event_id=f"evt_{prefix}{i}", donation_id=f"don_{prefix}{i}", amount_minor=amount).decode()
              for i in range(count)]
    django_run(env, f"""
from campaigns.providers.generic import GenericWebhooks
from campaigns.services import intake
from campaigns.models import PaymentEvent
for body in {bodies!r}:
    event = GenericWebhooks().parse(body.encode())
    intake.payment_event_receive(provider="generic", event=event, body=body.encode(), headers={{}})
for pk in PaymentEvent.objects.filter(status="received").values_list("pk", flat=True):
    intake.payment_event_process(event_id=pk)
""")


def test_restoring_a_dump_brings_the_banner_back_to_the_restored_figure(tmp_path):
    """The drill of README's "Operations": dump, more gifts (published), restore the dump, beat's
    refresh: progress.json shows the restored total again, and reconcile is clean."""
    prefix = f"jauge-restore-{os.getpid()}"
    try:
        _restore_drill(prefix, tmp_path)
    finally:
        from django.core.cache import cache

        client = cache._cache.get_client(write=True)
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)


def _restore_drill(prefix: str, tmp_path: Path) -> None:
    with BenchDatabase(name=f"jauge_restore_{os.getpid()}") as db:
        env = {**os.environ, "DATABASE_URL": db.url, "CACHE_KEY_PREFIX": prefix}
        db.migrate(env)
        db.create_campaign(env, slug="test-campaign")
        _apply(env, prefix="before", count=4, amount=1250)
        assert _backup_once(db.url, tmp_path).returncode == 0
        (dump,) = tmp_path.glob("jauge-*.dump")

        _apply(env, prefix="after", count=3, amount=1000)
        with Gunicorn(env, workers=1) as web:
            progress = f"{web.url}/api/campaigns/test-campaign/progress.json"
            assert get_json(progress)[1]["total_minor"] == 8000

            # The restore (README): stop the app's writers, then pg_restore --clean over the database.
            subprocess.run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--dbname", db.url, str(dump)],
                           check=True, capture_output=True, timeout=120)
            assert "OK" in manage(env, "reconcile")
            time.sleep(1.5)  # the web process's own copy lives PROGRESS_LOCAL_SECONDS
            # The shared cache still holds the newer snapshot (its compare-and-set refuses older
            # versions); beat's refresh steps it back.
            assert get_json(progress)[1]["total_minor"] == 8000
            refresh = "from campaigns.services import progress; print(progress.progress_lagging_refresh())"
            refreshed = django_run(env, refresh)
            assert "test-campaign" in refreshed
            time.sleep(1.5)
            body = get_json(progress)[1]
            assert body["total_minor"] == 5000
            assert body["donations"] == 4
