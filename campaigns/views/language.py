"""Which of settings.LANGUAGES a reader's page speaks: the one definition the pages share."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

LANGUAGES = tuple(code for code, _name in settings.LANGUAGES)


def asked_language(request: HttpRequest) -> str:
    """The language the reader asked for (`?lang=`, or a form's `lang`), '' when none we speak."""
    lang = request.GET.get("lang") or request.POST.get("lang") or ""
    return lang if lang in LANGUAGES else ""
