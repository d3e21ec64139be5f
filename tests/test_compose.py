"""docker-compose.yml: the scale-out shape the README promises."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from bench.harness import nginx_binary, nginx_config

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_defines_web_worker_beat_postgres_and_redis():
    services = _compose()["services"]
    assert {"web", "worker", "beat", "postgres", "redis"} <= set(services)
    assert "granian" in services["web"]["command"]
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
def test_web_replicas_publish_no_host_port_and_only_the_cache_does():
    services = _compose()["services"]
    for name, service in services.items():
        if name != "cache":
            assert "ports" not in service, f"{name} publishes a host port: `--scale {name}=3` would fail"
    assert services["cache"]["ports"] == ["${JAUGE_HTTP_PORT:-8000}:80"]
    assert "nginx" in services["cache"]["image"]
    assert "./deploy/nginx/jauge.conf:/etc/nginx/conf.d/default.conf:ro" in services["cache"]["volumes"]


def test_the_schema_is_migrated_once_before_web_worker_and_beat():
    services = _compose()["services"]
    assert shlex.split(services["migrate"]["command"])[-3:] == ["manage.py", "migrate", "--noinput"]
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
        assert "migrate" not in services[name]["command"], name


def test_the_procfile_and_the_image_run_web_as_compose_does():
    """One server configuration, measured by bench/banner.py (which reads it from docker-compose.yml)."""
    compose = shlex.split(_compose()["services"]["web"]["command"])

    def options(args: list[str]) -> list[str]:
        args = [arg.removeprefix(".venv/bin/") for arg in args]
        for option in ("--host", "--port", "--log-level"):
            if option in args:
                del args[args.index(option):args.index(option) + 2]
        return args

    procfile = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    assert options(shlex.split(procfile.removeprefix("web:"))) == options(compose)
    dockerfile_cmd = next(line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD"))
    assert options(yaml.safe_load(dockerfile_cmd.removeprefix("CMD"))) == options(compose)


def test_the_image_leaves_out_secrets_and_local_state():
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".env", ".venv", ".git", "var", "staticfiles", "__pycache__", "node_modules"} <= ignored


def test_the_shipped_cache_config_is_valid_nginx(tmp_path):
    binary = nginx_binary()
    if binary is None:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail("nginx is required under REQUIRE_SERVICES=1 (apt-get install nginx-light)")
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx_config(upstream="127.0.0.1:9", port=8080, workdir=tmp_path))
    result = subprocess.run([binary, "-t", "-e", str(tmp_path / "error.log"), "-c", str(conf)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
