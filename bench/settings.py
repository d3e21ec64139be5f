"""Jauge's settings with the bench URLconf (DJANGO_SETTINGS_MODULE=bench.settings)."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
