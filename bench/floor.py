"""The framework floor: a bare Django app (one constant-string view, Security + Common middleware only).

    DJANGO_SETTINGS_MODULE=bench.floor gunicorn bench.floor:application

Settings, URLconf and WSGI application in one module. Jauge's hot paths are measured as ratios of
this app under the same server and worker count: what Django itself costs is in the reference,
what Jauge adds is not.
"""

from __future__ import annotations

import os

from django.http import HttpRequest, HttpResponse
from django.urls import path

SECRET_KEY = "bench-floor"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "bench.floor"
INSTALLED_APPS: list[str] = []
DATABASES: dict = {}
MIDDLEWARE = ["django.middleware.security.SecurityMiddleware", "django.middleware.common.CommonMiddleware"]
USE_TZ = True
USE_I18N = False


def constant(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [path("bench/constant/", constant)]

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.floor")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
