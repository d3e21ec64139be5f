"""docker-compose.yml: the scale-out shape the README promises."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_defines_web_worker_beat_postgres_and_redis():
    services = _compose()["services"]
    assert {"web", "worker", "beat", "postgres", "redis"} <= set(services)
    assert "gunicorn" in services["web"]["command"]
    assert "worker" in services["worker"]["command"]
    assert "beat" in services["beat"]["command"]


def test_compose_services_have_healthchecks_and_wait_for_healthy_backends():
    services = _compose()["services"]
    for name in ("web", "worker", "postgres", "redis"):
        assert services[name]["healthcheck"]["test"], name
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    for name in ("web", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == depends["redis"]["condition"] == "service_healthy"


def test_compose_app_services_read_an_env_file_and_use_postgres_and_redis():
    services = _compose()["services"]
    for name in ("web", "worker", "beat"):
        service = services[name]
        assert service["env_file"] in (".env", [".env"]) or ".env" in str(service["env_file"])
        env = service["environment"]
        assert env["DATABASE_URL"].startswith("postgres://")
        assert env["CELERY_BROKER_URL"].startswith("redis://")
        assert env["REDIS_URL"].startswith("redis://")
    assert (ROOT / ".env.example").exists()


def test_the_compose_web_healthcheck_asks_for_a_host_the_example_env_allows():
    # `cp .env.example .env` then `docker compose up`: a Host outside ALLOWED_HOSTS answers 400,
    # and the web service would never turn healthy.
    import re
    from pathlib import Path

    import yaml
    from django.http.request import validate_host

    root = Path(__file__).resolve().parent.parent
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    check = " ".join(compose["services"]["web"]["healthcheck"]["test"])
    host = re.search(r"https?://([^/:'\"]+)(?::\d+)?/healthz", check).group(1)
    allowed = re.search(r"^ALLOWED_HOSTS=(.*)$", (root / ".env.example").read_text(), re.M).group(1).split(",")
    assert validate_host(host, [name.strip() for name in allowed])
