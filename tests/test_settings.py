"""Settings are parsed strictly: a bad value stops the process and names the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_settings(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT, env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [("DEBUG", "maybe"), ("CONN_MAX_AGE", "soon"), ("SWEEP_AFTER_SECONDS", "-5"), ("DATABASE_URL", "nonsense://x"),
     ("PROGRESS_CACHE_SECONDS", "0"), ("CELERY_DB_REUSE_MAX", "many"), ("RECEIPTS_BATCH_SECONDS", "-1")],
)
def test_a_bad_value_stops_the_process_naming_the_variable(name, value):
    result = load_settings(**{name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert name in result.stderr


def test_good_values_load():
    result = load_settings(DEBUG="false", CONN_MAX_AGE="0", SWEEP_AFTER_SECONDS="30")
    assert result.returncode == 0, result.stderr


def test_an_unknown_campaign_page_answers_a_readable_404(client, db, settings):
    settings.DEBUG = False
    response = client.get("/c/nulle-part/")
    assert response.status_code == 404
    assert "Page introuvable" in response.content.decode()


def test_every_environment_variable_the_settings_read_is_documented():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    source = (root / "config" / "settings.py").read_text()
    names = set(re.findall(r'(?:env_(?:str|int|bool|list)|os\.environ\.get)\(\s*"([A-Z][A-Z0-9_]+)"', source))
    assert {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "EMBED_ALLOWED_ORIGINS"} <= names
    example = (root / ".env.example").read_text()
    readme = (root / "README.md").read_text()
    assert not {name for name in names if not re.search(rf"^#?\s*{name}=", example, re.M)}, ".env.example"
    assert not {name for name in names if f"`{name}`" not in readme}, "README"
