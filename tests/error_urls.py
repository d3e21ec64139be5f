"""Jauge's URLs plus /boom/, a view that raises (tests/test_logging.py)."""

from django.urls import include, path


class DeliberateFailure(Exception):
    pass


def boom(request):
    raise DeliberateFailure("a view failed on purpose (tests/test_logging.py)")


urlpatterns = [
    path("boom/", boom),
    path("", include("config.urls")),
]
