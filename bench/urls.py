"""The bench's URLconf: Jauge's own, plus a constant-string view (the framework floor).

Only bench/settings.py uses it; production URLs never carry the constant view.
"""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def constant(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("bench/constant/", constant),
    path("", include("config.urls")),
]
